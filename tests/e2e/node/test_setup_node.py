"""setup-node.sh end to end: https via nginx with a pebble certificate, TLS 1.2+ only,
renewal installed, a participant's kernel through wss, and an idempotent second run."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.hubclient import HubSession
from tests.e2e.node.conftest import Node

STEPS = ["packages", "engine", "base-image", "project", "nginx", "tls", "renewal", "stack",
         "health"]


def fingerprint(node: Node) -> dict[str, str]:
    """What a second run must leave exactly as it was."""
    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    return {
        "site": digest("/etc/nginx/sites-available/workshop.conf"),
        "certificate": digest(str(Path("/etc/letsencrypt/live") / node.host / "fullchain.pem")),
        "users": digest(str(node.project_dir / "etc/jupyterhub/users.txt")),
        "container": node.compose("ps", "-q").stdout.strip(),
        "nginx": Path("/run/nginx.pid").read_text().strip(),
    }


@pytest.fixture(scope="module")
def first_run(node: Node) -> subprocess.CompletedProcess[str]:
    result = node.setup()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_every_step_is_announced_and_the_url_printed(node: Node, first_run):
    announced = re.findall(r"^==> \[([a-z-]+)\]", first_run.stdout, re.MULTILINE)
    assert [s for s in STEPS if s in announced] == STEPS
    assert f"ready: https://{node.host}/" in first_run.stdout


def test_https_with_the_issued_certificate_and_hsts(node: Node, first_run):
    root = str(node.pebble.issuing_root())
    r = requests.get(f"https://{node.host}/hub/health", verify=root, timeout=10)
    assert r.status_code == 200
    assert "max-age=" in r.headers["Strict-Transport-Security"]
    r = requests.get(f"http://{node.host}/hub/login", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"].startswith(f"https://{node.host}/")
    with pytest.raises(requests.exceptions.SSLError):  # not trusted without pebble's root
        requests.get(f"https://{node.host}/hub/health", timeout=10)


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_tls_versions_are_refused(node: Node, first_run, version: str):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:443", "-servername", node.host,
         version, "-cipher", "DEFAULT:@SECLEVEL=0"],
        input="", capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "Cipher is (NONE)" in result.stdout or "alert" in result.stderr


def test_tls12_and_13_are_accepted(node: Node, first_run):
    for version in ("-tls1_2", "-tls1_3"):
        result = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:443",
                                 "-servername", node.host, version], input="",
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr


def test_renewal_is_installed(node: Node, first_run):
    renewal = Path(f"/etc/letsencrypt/renewal/{node.host}.conf").read_text()
    assert "authenticator = webroot" in renewal
    assert node.pebble.directory_url in renewal  # renews against the same ACME server
    hook = Path("/etc/letsencrypt/renewal-hooks/deploy/workshop-reload-nginx")
    assert hook.stat().st_mode & 0o111 and "nginx" in hook.read_text()
    assert "certbot -q renew" in Path("/etc/cron.d/certbot").read_text()
    assert subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0


def test_a_participant_works_through_nginx_and_websockets(node: Node, first_run):
    users = (node.project_dir / "etc/jupyterhub/users.txt")
    assert users.stat().st_mode & 0o777 == 0o600
    password = re.search(r"^alice:(\S+)$", users.read_text(), re.MULTILINE).group(1)
    assert not password.startswith("change-me")  # the sample's placeholder was replaced
    alice = HubSession("alice", base=f"https://{node.host}",
                       verify=str(node.pebble.issuing_root()))
    alice.login(password)
    alice.spawn()
    alice.open_lab()
    kernel = alice.start_kernel()  # the websocket goes through nginx's upgrade handling
    try:
        assert kernel.execute("print(6 * 7)")["stdout"].strip() == "42"
    finally:
        kernel.close()


def test_second_run_succeeds_and_changes_nothing(node: Node, first_run):
    before = fingerprint(node)
    second = node.setup()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert fingerprint(node) == before
    assert "already installed" in second.stdout
    assert "valid for 30+ days" in second.stdout
    assert "unchanged" in second.stdout
