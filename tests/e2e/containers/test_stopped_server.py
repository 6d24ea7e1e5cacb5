"""A stopped server: its container goes, the home stays, the dashboard keeps the last render.

Runs last in this package (it stops alice's server).
"""

from __future__ import annotations

import time

import requests

from tests.e2e.compose_stack import Stack
from tests.e2e.containers.conftest import inspect
from tests.e2e.containers.test_dashboard_source import (
    DASHBOARD,
    NOTEBOOK,
    rendered,
)
from tests.e2e.hubclient import HubSession


def wait(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout}s"
        time.sleep(0.5)
    return time.monotonic() - started


def test_stopping_removes_the_container_keeps_home_and_last_render(
        stack: Stack, alice: HubSession, teacher_token: str):
    before = rendered(teacher_token, "alice", NOTEBOOK)
    assert before.status_code == 200 and "through-jupyter-" in before.text, before.text[:300]

    r = alice.hub_api("DELETE", "/users/alice/server")
    # 400: already stopped (the memory test may have taken the whole container down).
    assert r.status_code in (202, 204, 400), r.text
    seconds = wait(lambda: not alice.user_model()["servers"], 180, "alice's server stopped")
    seconds += wait(lambda: inspect("alice") is None, 120, "alice's container removed")
    print(f"\nstop -> container removed: {seconds:.1f}s")
    assert (stack.home / "alice" / NOTEBOOK).exists()  # the home is kept

    # A restarted dashboard catches up with alice's server down: nothing is forgotten.
    pid = stack.dashboard_pid()
    stack.exec("kill", str(pid))

    def restarted() -> bool:
        if stack.dashboard_pid() in (0, pid):
            return False
        try:
            return requests.get(f"{DASHBOARD}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait(restarted, 120, "the dashboard restarted")
    time.sleep(3)  # its catch-up runs at start, off the request thread
    after = rendered(teacher_token, "alice", NOTEBOOK)
    assert after.status_code == 200 and after.text == before.text
    health = requests.get(f"{DASHBOARD}/health", timeout=10,
                          headers={"Authorization": f"token {teacher_token}"}).json()
    assert health["render_errors"] == 0, health
