"""setup-node.sh end to end: https via nginx with a pebble wildcard certificate, TLS 1.2+
only, renewal installed, a participant's kernel through wss on their own subdomain, the
dashboard on its own origin, the participants' firewall, and an idempotent second run."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.hubclient import HubSession
from tests.e2e.node.conftest import FIREWALL_CHAIN, HTTP_PORT, HTTPS_PORT, PROJECT, Node

STEPS = ["packages", "engine", "base-image", "project", "nginx", "tls", "renewal", "firewall",
         "stack", "health"]


def fingerprint(node: Node) -> dict[str, str]:
    """What a second run must leave exactly as it was."""
    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    return {
        "site": digest(f"/etc/nginx/sites-available/{PROJECT}.conf"),
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
    assert f"ready: https://{node.host}:{HTTPS_PORT}/" in first_run.stdout
    assert "[firewall] firewall (outbound): participants" in first_run.stdout


def test_https_with_the_issued_certificate_and_hsts(node: Node, first_run):
    root = str(node.pebble.issuing_root())
    hub = node.addresses.hub("/hub/health")
    r = requests.get(hub, verify=root, timeout=10)
    assert r.status_code == 200
    assert "max-age=" in r.headers["Strict-Transport-Security"]
    r = requests.get(f"http://{node.host}:{HTTP_PORT}/hub/login", allow_redirects=False,
                     timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"].startswith(f"https://{node.host}:{HTTPS_PORT}/")
    with pytest.raises(requests.exceptions.SSLError):  # not trusted without pebble's root
        requests.get(hub, timeout=10)


def test_one_wildcard_certificate_gives_everyone_an_origin(node: Node, first_run):
    live = Path(f"/etc/letsencrypt/live/{node.host}/fullchain.pem")
    names = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                            str(live)], capture_output=True, text=True, check=True).stdout
    assert f"DNS:{node.host}" in names and f"DNS:*.{node.host}" in names
    renewal = Path(f"/etc/letsencrypt/renewal/{node.host}.conf").read_text()
    assert "authenticator = manual" in renewal and "manual_auth_hook" in renewal
    # The old dashboard address sends browsers to the dashboard's own origin.
    r = requests.get(node.addresses.hub("/services/dashboard/"), allow_redirects=False,
                     verify=str(node.pebble.issuing_root()), timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"] == node.addresses.service("dashboard")


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_tls_versions_are_refused(node: Node, first_run, version: str):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{HTTPS_PORT}", "-servername",
         node.host, version, "-cipher", "DEFAULT:@SECLEVEL=0"],
        input="", capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "Cipher is (NONE)" in result.stdout or "alert" in result.stderr


def test_tls12_and_13_are_accepted(node: Node, first_run):
    for version in ("-tls1_2", "-tls1_3"):
        result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{HTTPS_PORT}",
                                 "-servername", node.host, version], input="",
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr


def test_renewal_is_installed(node: Node, first_run):
    renewal = Path(f"/etc/letsencrypt/renewal/{node.host}.conf").read_text()
    assert "authenticator = manual" in renewal  # DNS-01 through the hook: the wildcard
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
    alice = HubSession("alice", node.addresses, verify=str(node.pebble.issuing_root()))
    alice.login(password)
    alice.spawn()
    alice.open_lab()
    assert alice.server_url.startswith(f"https://alice.{node.host}:{HTTPS_PORT}/")
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


def test_participants_firewall_is_in_place(node: Node, first_run):
    rules = subprocess.run(["iptables", "-S", f"{FIREWALL_CHAIN}-OUT"], capture_output=True,
                           text=True, check=True).stdout
    assert "-d 169.254.169.254/32 -m owner --uid-owner 2000-59999 -j REJECT" in rules
    # outbound only here: this machine is not a node on the internet
    assert subprocess.run(["iptables", "-S", f"{FIREWALL_CHAIN}-IN"],
                          capture_output=True).returncode != 0
