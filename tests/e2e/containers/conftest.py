"""One real stack in per-participant containers mode for every test in this package.

The appliance's compose files plus docker-compose.containers.yml (exactly what an
instructor enables) and a small test override (256M memory limit, the dashboard reading
through the servers). Its own compose project and container name prefix, so nothing of
anybody else's stack is touched; participants' containers (made by the hub, not by
compose) are removed at the end by that prefix.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import hubclient
from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.hubclient import HubSession, started

PROJECT = "workshop-containers-e2e"
PREFIX = "workshop-e2e-participant"  # WORKSHOP_CONTAINER_PREFIX in the test override (not
# a prefix of the project name: the hub container must never match it)
MEM_LIMIT = 512 * 1024**2  # WORKSHOP_MEM_LIMIT in the test override
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "erin": "erin-pw",
             "teacher": "teacher-pw"}
USERS = """# e2e participants (containers mode)
alice:alice-pw
bob:bob-pw
[instructors]
teacher:teacher-pw
"""
MATERIALS = {"welcome.md": "# Welcome\n"}
# This package's stack: loopback ports 960-963, http://lab.localhost:960 for browsers.
ADDRESSES = local_addresses(960)
DASHBOARD = ADDRESSES.service("dashboard").rstrip("/")


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300,
                            check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def container_of(user: str) -> str:
    return f"{PREFIX}-{user}"


def inspect(user: str) -> dict[str, Any] | None:
    """`docker inspect` of a participant's container, or None when there is none."""
    out = docker("inspect", container_of(user), check=False)
    found = json.loads(out) if out.strip() else []
    return found[0] if found else None


def our_containers() -> list[str]:
    return docker("ps", "-a", "--filter", f"name=^{PREFIX}-", "--format", "{{.Names}}",
                  check=False).split()


def keep_logs(directory: Path) -> None:
    """Participants' server logs (not in the hub's: their own containers)."""
    for name in our_containers():
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True,
                              timeout=60, check=False)
        (directory / f"{name}.log").write_text(logs.stdout + logs.stderr)


def remove_our_containers() -> None:
    for name in our_containers():
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    s = Stack(ROOT / "tmp" / "e2e-containers", project=PROJECT, port=ADDRESSES.port,
              extra_files=(ROOT / "docker-compose.containers.yml",
                           ROOT / "tests/e2e/containers/compose.containers-e2e.yml"))
    s.down()  # a stack left over from an interrupted run
    remove_our_containers()
    s.prepare(USERS, MATERIALS)
    try:
        with s.running("containers"):
            try:
                yield s
            finally:
                keep_logs(s.workdir)  # the participants' containers' logs, before they go
        # down: the hub stopped (and so removed) the servers it could in its grace time
    finally:
        remove_our_containers()


def logged_in(name: str) -> HubSession:
    return hubclient.logged_in(name, PASSWORDS[name])


def spawned(name: str) -> HubSession:
    return started(name, PASSWORDS[name], timeout=240)


@pytest.fixture(scope="package")
def alice(stack: Stack) -> HubSession:
    return spawned("alice")


@pytest.fixture(scope="package")
def bob(stack: Stack) -> HubSession:
    return spawned("bob")


@pytest.fixture(scope="package")
def teacher_token(stack: Stack) -> str:
    return logged_in("teacher").new_token()
