"""Logins, spawns, saves, and participants kept apart from each other and from the hub."""

from __future__ import annotations

import time

import requests

from tests.e2e.appliance.conftest import ADDRESSES, EVENTS, PASSWORDS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession

NOTEBOOK = [{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "1 + 1",
             "outputs": [{"output_type": "execute_result", "execution_count": 1,
                          "metadata": {}, "data": {"text/plain": "2"}}]}]


def test_health_logins_and_servers(stack: Stack, alice: HubSession, bob: HubSession):
    assert requests.get(ADDRESSES.hub("/hub/health"), timeout=5).status_code == 200
    for session in (alice, bob):
        status = session.server_api("GET", "/status")
        assert status.status_code == 200, status.text
        assert session.user_model()["servers"][""]["ready"] is True
    # The default URL is JupyterLab.
    assert alice.user_model()["servers"][""]["url"] == ADDRESSES.user("alice")
    assert "JupyterLab" in alice.open_lab().text


def test_wrong_password_is_refused(stack: Stack):
    assert not HubSession("alice").can_login("not-the-password")
    assert not HubSession("nobody").can_login("whatever")
    assert HubSession("bob").can_login(PASSWORDS["bob"])  # bcrypt hash in users.txt


def test_save_lands_in_home_owned_by_participant_and_reaches_dashboard(
        stack: Stack, alice: HubSession, teacher_token: str):
    r = alice.save_notebook("hello.ipynb", NOTEBOOK)
    assert r.status_code in (200, 201), r.text
    on_disk = stack.home / "alice" / "hello.ipynb"
    assert on_disk.exists()
    assert on_disk.stat().st_uid == stack.uid_of("alice")
    home = (stack.home / "alice").stat()
    assert home.st_mode & 0o777 == 0o700 and home.st_uid == stack.uid_of("alice")

    deadline = time.monotonic() + 5
    events: list = []
    while time.monotonic() < deadline and not events:
        r = requests.get(EVENTS,
                         params={"user": "alice", "path": "hello.ipynb"},
                         headers={"Authorization": f"token {teacher_token}"}, timeout=5)
        assert r.status_code == 200, r.text
        events = r.json()
        time.sleep(0.2)
    assert len(events) == 1, "the save hook's event did not reach the dashboard"
    event = events[0]
    assert event["type"] == "save-notebook" and event["filename"] == "hello.ipynb"
    assert event["timestamp"].endswith("+00:00")


def test_bob_cannot_read_alice_home(stack: Stack, alice: HubSession, bob: HubSession):
    alice.save_notebook("private.ipynb", NOTEBOOK)
    kernel = bob.start_kernel()
    try:
        probe = ["/home/alice", "/home/alice/private.ipynb",
                 # users.txt and the hub's secrets are out of reach too.
                 "/srv/hub/users/users.txt", "/srv/hub/state/proxy_token"]
        out = kernel.execute("import os\n"
                             f"for p in {probe!r}:\n"
                             "    try:\n"
                             "        os.listdir(p) if os.path.isdir(p) else open(p).read()\n"
                             "        print('READABLE')\n"
                             "    except PermissionError:\n"
                             "        print('denied')\n")
        assert out["stdout"].split() == ["denied"] * len(probe), out
        whoami = kernel.execute("import os; print(os.getuid())")
        assert int(whoami["stdout"]) == stack.uid_of("bob")
    finally:
        kernel.close()
    # Nor through bob's own contents API, nor through alice's server.
    r = bob.server_api("GET", "/contents/../alice/private.ipynb")
    assert r.status_code in (400, 403, 404)
    r = bob.http.get(ADDRESSES.user("alice", "api/contents/private.ipynb"),
                     allow_redirects=True, timeout=30)
    assert r.status_code in (403, 404) and "cells" not in r.text


def test_hub_listens_on_loopback_only_and_secrets_are_private(stack: Stack):
    listening = stack.exec("python3", "-c",
                           "import psutil; print('\\n'.join(f'{c.laddr.ip}:{c.laddr.port}' "
                           "for c in psutil.net_connections('inet') if c.status == 'LISTEN'))"
                           ).stdout.split()
    wanted = sorted(str(p) for p in ADDRESSES.internal_ports())
    ours = [a for a in listening if a.rsplit(":", 1)[1] in wanted]
    assert sorted(a.rsplit(":", 1)[1] for a in ours) == wanted, ours
    assert all(a.startswith("127.0.0.1:") for a in ours), ours
    modes = stack.exec("stat", "-c", "%a %n", "/srv/hub", "/srv/hub/state/proxy_token",
                       "/srv/hub/state/jupyterhub_cookie_secret",
                       "/srv/hub/state/dashboard/cookie_secret").stdout.split("\n")
    assert [m.split()[0] for m in modes if m] == ["700", "600", "600", "600"], modes
