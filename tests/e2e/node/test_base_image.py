"""The base image from Debian's archive, the way a fresh machine gets it: setup-node.sh's
base-image step for real (mmdebstrap + docker import), under a throw-away tag so the
machine's own debian:trixie-slim is never touched and this path runs on every CI run."""

from __future__ import annotations

import os
import subprocess

from tests.e2e.compose_stack import ROOT

TAG = "workshop-e2e-base:trixie-slim"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_base_image_is_built_from_debians_archive():
    docker("rmi", "-f", TAG)
    try:
        result = subprocess.run(["bash", "setup-node.sh", "--only", "base-image"], cwd=ROOT,
                                env={**os.environ, "WORKSHOP_BASE_IMAGE": TAG},
                                capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert f"building {TAG} with mmdebstrap from Debian trixie" in result.stdout
        assert f"[base-image] {TAG} built" in result.stdout
        release = docker("run", "--rm", "--network", "host", TAG, "cat", "/etc/os-release")
        assert release.returncode == 0, release.stderr
        assert "VERSION_CODENAME=trixie" in release.stdout
        # apt inside a build works: the archive's keys and CA roots are in the image.
        certs = docker("run", "--rm", "--network", "host", TAG, "ls", "/etc/ssl/certs")
        assert "ca-certificates.crt" in certs.stdout
        # A second run finds it and builds nothing.
        again = subprocess.run(["bash", "setup-node.sh", "--only", "base-image"], cwd=ROOT,
                               env={**os.environ, "WORKSHOP_BASE_IMAGE": TAG},
                               capture_output=True, text=True, timeout=120, check=False)
        assert f"{TAG} present" in again.stdout
    finally:
        docker("rmi", "-f", TAG)
