"""`docker compose restart` keeps homes, accounts, events; everyone logs in again."""

from __future__ import annotations

import requests

from tests.e2e.appliance.conftest import EVENTS, PASSWORDS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession


def test_compose_restart_keeps_homes_and_events(stack: Stack, alice: HubSession,
                                               teacher_token: str):
    alice.save_notebook("before-restart.ipynb", [])
    uid = stack.uid_of("alice")
    auth = {"Authorization": f"token {teacher_token}"}
    before = requests.get(EVENTS, headers=auth, timeout=10).json()
    assert before

    stack.compose("restart", "hub", timeout=300)
    stack.wait_healthy()

    notebook = stack.home / "alice" / "before-restart.ipynb"
    assert notebook.exists() and notebook.stat().st_uid == uid
    assert stack.uid_of("alice") == uid
    assert requests.get(EVENTS, headers=auth, timeout=10).json() == before
    again = HubSession("alice")
    again.login(PASSWORDS["alice"])
    again.spawn()
    again.open_lab()
    r = again.server_api("GET", "/contents/before-restart.ipynb")
    assert r.status_code == 200 and r.json()["type"] == "notebook"
