"""Containment in containers mode (issue 12): the same walls as one process per
participant, plus what a participant's own server configuration cannot get hold of."""

from __future__ import annotations

import os
import re

import requests

from tests.e2e.compose_stack import Stack
from tests.e2e.containers.conftest import ADDRESSES, DASHBOARD, inspect
from tests.e2e.hubclient import HubSession, within

# A participant owns ~/.jupyter: this config makes their own server write down the
# headers of every request it receives, the way a curious participant would.
RECORDER = '''
import json, os
from jupyter_server.base.handlers import JupyterHandler

_prepare = JupyterHandler.prepare

def _recording_prepare(self, *args, **kwargs):
    with open(os.path.expanduser("~/headers.log"), "a") as log:
        log.write(json.dumps({"path": self.request.path, **self.request.headers}) + "\\n")
    return _prepare(self, *args, **kwargs)

JupyterHandler.prepare = _recording_prepare
'''


def test_containers_have_no_capabilities_and_cannot_take_the_hubs_ports(
        stack: Stack, alice: HubSession):
    alice.spawn(timeout=240)  # running again if an earlier test stopped it
    alice.open_lab()
    host = inspect("alice")["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] and host["PidsLimit"] > 0
    ports = sorted(ADDRESSES.internal_ports())
    out = alice.run(
        "import errno, socket\n"
        f"for port in {[*ports, ports[-1] + 1]!r}:\n"
        "    s = socket.socket()\n"
        "    try:\n"
        "        s.bind(('127.0.0.1', port)); print('BOUND')\n"
        "    except OSError as e:\n"
        "        print(errno.errorcode[e.errno])\n"
        "    finally:\n"
        "        s.close()\n")
    assert out.split() == ["EACCES"] * (len(ports) + 1), out


def test_contents_mode_never_hands_a_participant_a_token_for_anybody_else(
        stack: Stack, bob: HubSession, teacher_token: str):
    """carol's server records every header it receives while the dashboard reads her
    notebook through it; no token she collects opens bob's server or acts as the hub."""
    before = stack.users_file.read_text()
    stack.write_users(before + "[participants]\ncarol:carol-pw\n")
    within(15, lambda: HubSession("carol").can_login("carol-pw"), "carol can log in")
    carol = HubSession("carol")
    carol.login("carol-pw")
    home = stack.home / "carol"
    within(15, home.is_dir, "carol's home exists")
    try:
        config = home / ".jupyter" / "jupyter_server_config.py"
        config.parent.mkdir(exist_ok=True)
        config.write_text(RECORDER)
        uid = stack.uid_of("carol")
        for path in (config.parent, config):
            os.chown(path, uid, uid)
        carol.spawn(timeout=240)
        carol.open_lab()
        saved = carol.save_notebook("spy.ipynb", [])
        assert saved.status_code in (200, 201), saved.text
        log = home / "headers.log"

        def dashboard_came() -> list[str]:
            if not log.exists():
                return []
            # The dashboard's reads come with a token (carol's own calls with her cookies).
            return [line for line in log.read_text().splitlines()
                    if "/api/contents" in line and '"Authorization"' in line]

        within(30, dashboard_came, "the dashboard read carol's notebook through her server")
        tokens = set(re.findall(r'"Authorization": "(?:token|Bearer) ([^"]+)"',
                                log.read_text(), re.IGNORECASE))
        assert tokens, "the dashboard's requests carried no token at all?"
        for token in tokens:
            auth = {"Authorization": f"token {token}"}
            who = requests.get(ADDRESSES.hub("/hub/api/user"), headers=auth, timeout=10)
            assert who.status_code == 200 and who.json()["name"] == "carol", who.text
            assert who.json().get("kind") == "user"  # carol's own token, not a service's
            r = requests.get(ADDRESSES.user("bob", "api/status"), headers=auth, timeout=10,
                             allow_redirects=False)
            assert r.status_code != 200, "a token carol collected opens bob's server"
            r = requests.get(f"{DASHBOARD}/events", headers=auth, timeout=10)
            assert r.status_code in (401, 403)  # and it is no instructor's either
    finally:
        carol.hub_api("DELETE", "/users/carol/server")
        stack.write_users(before)
