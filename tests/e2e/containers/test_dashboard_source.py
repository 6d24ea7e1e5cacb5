"""The dashboard without the homes on its disk: it reads saves through participants' servers."""

from __future__ import annotations

import time
import uuid

import requests

from tests.e2e.compose_stack import Stack
from tests.e2e.containers.conftest import DASHBOARD
from tests.e2e.hubclient import HubSession

NOTEBOOK = "day1/live.ipynb"
HIDDEN = "/nonexistent/homes-hidden-from-the-dashboard"  # compose.containers-e2e.yml


def cell(marker: str) -> dict:
    return {"cell_type": "code", "execution_count": 1, "metadata": {},
            "source": f"print('{marker}')",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": marker + "\n"}]}



def rendered(token: str, user: str, path: str) -> requests.Response:
    return requests.get(f"{DASHBOARD}/rendered/{user}/{path}",
                        headers={"Authorization": f"token {token}"}, timeout=10)


def wait_rendered(token: str, user: str, path: str, marker: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        r = rendered(token, user, path)
        if r.status_code == 200 and marker in r.text:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{user}'s {path} not rendered with {marker} after {timeout}s: "
                         f"{r.status_code} {r.text[:300]}")


def test_the_dashboard_cannot_see_the_homes(stack: Stack):
    pid = stack.dashboard_pid()
    assert pid, "the dashboard service is not running"
    environ = stack.exec("cat", f"/proc/{pid}/environ").stdout.split("\0")
    assert f"WORKSHOP_HOME_ROOT={HIDDEN}" in environ
    assert "DASHBOARD_SOURCE=contents" in environ
    assert stack.exec("test", "-e", HIDDEN, check=False).returncode != 0


def test_a_save_is_rendered_from_the_participants_server(
        stack: Stack, alice: HubSession, teacher_token: str):
    alice.server_api("PUT", "/contents/day1", json={"type": "directory"})
    marker = f"through-jupyter-{uuid.uuid4().hex[:8]}"
    r = alice.save_notebook(NOTEBOOK, [cell(marker)])
    assert r.status_code in (200, 201), r.text
    seconds = wait_rendered(teacher_token, "alice", NOTEBOOK, marker, timeout=15)
    print(f"\nsave -> rendered through the contents API: {seconds:.2f}s")
    # The summary page of that notebook has alice's cell too.
    r = requests.get(f"{DASHBOARD}/summary/{NOTEBOOK}",
                     headers={"Authorization": f"token {teacher_token}"}, timeout=10)
    assert r.status_code == 200 and marker in r.text
    # The zip of everyone's copy is read through the server as well.
    r = requests.get(f"{DASHBOARD}/download/{NOTEBOOK}",
                     headers={"Authorization": f"token {teacher_token}"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
