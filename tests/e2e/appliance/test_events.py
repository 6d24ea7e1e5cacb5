"""The dashboard's events API through the real proxy, with real hub tokens."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import requests

from tests.e2e.appliance.conftest import DASHBOARD, EVENTS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within

HEALTH = f"{DASHBOARD}/health"


def post(token: str | None, body: str | dict) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    if isinstance(body, dict):
        return requests.post(EVENTS, json=body, headers=headers, timeout=10)
    return requests.post(EVENTS, data=body, headers={**headers,
                         "Content-Type": "application/json"}, timeout=10)


def event(user: str, path: str = "day1/intro.ipynb") -> dict:
    return {"type": "save-notebook", "user": user, "filename": path.rsplit("/", 1)[-1],
            "path": path}


def test_post_requires_a_token_of_that_user(stack: Stack, alice: HubSession):
    token = alice.new_token()
    assert post(None, event("alice")).status_code == 401
    assert post("not-a-real-token", event("alice")).status_code == 401
    r = post(token, event("bob"))
    assert r.status_code == 403 and "alice" in r.json()["message"]


def test_bad_bodies_get_a_readable_400(stack: Stack, alice: HubSession):
    token = alice.new_token()
    r = post(token, '{"type": "save-notebook", "user": ')
    assert r.status_code == 400 and "malformed JSON" in r.json()["message"]
    r = post(token, {"type": "save-notebook", "user": "alice"})
    assert r.status_code == 400 and "path" in r.json()["message"]
    r = post(token, {**event("alice"), "path": "../bob/secret.ipynb"})
    assert r.status_code == 400 and "relative" in r.json()["message"]
    r = post(token, {**event("alice"), "timestamp": "yesterday"})
    assert r.status_code == 400 and "timestamp" in r.json()["message"]


def test_same_key_updates_and_keeps_id_and_filters_work(
        stack: Stack, alice: HubSession, teacher_token: str):
    token = alice.new_token()
    first = post(token, event("alice", "day1/keep-id.ipynb"))
    assert first.status_code == 201
    body = first.json()
    assert body["timestamp"].endswith("+00:00")  # defaulted to now, timezone-aware
    # The server's clock sets the stored time; a sane client time is kept beside it.
    now = datetime.now(timezone(timedelta(hours=1))).replace(microsecond=0)
    second = post(token, {**event("alice", "day1/keep-id.ipynb"), "timestamp": now.isoformat()})
    assert second.status_code == 201
    assert second.json()["id"] == body["id"]
    assert second.json()["client_timestamp"] == now.astimezone(UTC).isoformat()
    assert second.json()["timestamp"] >= body["timestamp"]

    auth = {"Authorization": f"token {teacher_token}"}
    r = requests.get(EVENTS, params={"path": "day1/keep-id.ipynb"}, headers=auth, timeout=10)
    assert [e["id"] for e in r.json()] == [body["id"]]
    r = requests.get(EVENTS, params={"filename": "keep-id.ipynb", "user": "bob"},
                     headers=auth, timeout=10)
    assert r.json() == []
    # Participants may post but never read everyone's events.
    r = requests.get(EVENTS, headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 403



def test_events_survive_a_restart_of_the_dashboard_and_saves_survive_its_absence(
        stack: Stack, alice: HubSession, teacher_token: str):
    token = alice.new_token()
    stored = post(token, event("alice", "day2/persist.ipynb")).json()
    pid = stack.dashboard_pid()
    assert pid
    stack.exec("kill", "-9", str(pid))  # a crash
    # While the dashboard is down, saving a notebook still succeeds, at once.
    started = time.monotonic()
    r = alice.save_notebook("while-down.ipynb", [])
    assert r.status_code in (200, 201), r.text
    assert time.monotonic() - started < 1.0
    # Its supervisor starts it again within seconds; the events are still there, and the
    # save made meanwhile arrives too (the save hook sends it again).
    auth = {"Authorization": f"token {teacher_token}"}
    def back() -> bool:
        try:
            return (stack.dashboard_pid() not in (0, pid)
                    and requests.get(HEALTH, timeout=2).status_code == 200)
        except requests.RequestException:
            return False

    took = within(30, back, "the dashboard is back")
    print(f"\ndashboard back {took:.1f}s after the crash")
    r = requests.get(EVENTS, params={"path": "day2/persist.ipynb"}, headers=auth, timeout=10)
    assert [e["id"] for e in r.json()] == [stored["id"]]
    within(40, lambda: requests.get(EVENTS, params={"path": "while-down.ipynb"},
                                    headers=auth, timeout=10).json(),
           "the save made while the dashboard was down arrives")
