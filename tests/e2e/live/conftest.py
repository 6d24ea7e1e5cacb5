"""The live class view against a real stack of its own: real hub, real kernels (the
system-wide IPython configuration loads the feed), a real browser on the board.

Its own compose project (workshop-live-e2e) on loopback ports 900-903, scratch data under
tmp/e2e-live; 60 participants in users.txt (alice, bob, p03..p60) for the class view.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.appliance.conftest import CHROMIUM_ARGS
from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.hubclient import HubSession, Kernel, within

ADDRESSES = local_addresses(900)
DASHBOARD = ADDRESSES.service("dashboard").rstrip("/")
LIVE = f"{DASHBOARD}/live"
EVENTS = f"{DASHBOARD}/events"
OVERRIDE = Path(__file__).with_name("compose.live-e2e.yml")
CLASS = ["alice", "bob", *(f"p{n:02d}" for n in range(3, 61))]  # 60 participants
PASSWORDS = {name: f"{name}-pw" for name in [*CLASS, "teacher"]}
USERS = "\n".join(f"{n}:{PASSWORDS[n]}" for n in CLASS) + \
    f"\n[instructors]\nteacher:{PASSWORDS['teacher']}\n"
LESSON = "day1/lesson.ipynb"


def _md(source: str, n: int) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": f"md-{n}", "metadata": {}, "source": source}


def _code(source: str, cell_id: str) -> dict[str, Any]:
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "source": source,
            "execution_count": None, "outputs": []}


LESSON_CELLS = [
    _md("# Python warm-up", 1), _code("x = 1", "warm-1"),
    _md("## Exercise 1: lists", 2), _code("numbers = [1, 2, 3]", "lists-1"),
    _code("total = sum(numbers)", "lists-2"),
    _md("## Exercise 2: loops", 3), _code("squares = [n * n for n in numbers]", "loops-1"),
    _code("print(squares)", "loops-2"),
    _md("## Exercise 3: functions", 4), _code("def double(n):\n    return 2 * n", "fn-1"),
    _code("double(total)", "fn-2"),
    _md("## Exercise 4: dicts", 5), _code("ages = {'ann': 31}", "dict-1"),
]
EXERCISES = ["Python warm-up", "Exercise 1: lists", "Exercise 2: loops",
             "Exercise 3: functions", "Exercise 4: dicts"]
LESSON_JSON = json.dumps({"cells": LESSON_CELLS, "metadata": {}, "nbformat": 4,
                          "nbformat_minor": 5}, indent=1)


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    s = Stack(ROOT / "tmp" / "e2e-live", project="workshop-live-e2e", port=ADDRESSES.port,
              extra_files=(OVERRIDE,))
    s.down()  # left over from an interrupted run
    s.prepare(USERS, {})
    (s.materials / "day1").mkdir()
    (s.materials / LESSON).write_text(LESSON_JSON)
    try:
        seconds = s.up()
        print(f"\nlive stack healthy in {seconds:.1f}s")
        yield s
    finally:
        (s.workdir / "hub.log").write_text(s.logs())
        s.down()


def logged_in(name: str) -> HubSession:
    session = HubSession(name, ADDRESSES)
    session.login(PASSWORDS[name])
    return session


def with_server(name: str) -> HubSession:
    session = logged_in(name)
    session.spawn()
    session.open_lab()
    return session


@pytest.fixture(scope="package")
def alice(stack: Stack) -> HubSession:
    return with_server("alice")


@pytest.fixture(scope="package")
def teacher_token(stack: Stack) -> str:
    return logged_in("teacher").new_token()


@pytest.fixture(scope="package")
def browser(stack: Stack) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def browser_login(browser: Browser, name: str, url: str = LIVE) -> Page:
    """A browser of `name` on `url` (the hub's login page first, as for anyone)."""
    page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    page.goto(url)
    expect(page.locator("#username_input")).to_be_visible()
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORDS[name])
    page.click("#login_submit")
    page.wait_for_load_state("networkidle")
    return page


@pytest.fixture(scope="package")
def board(browser: Browser) -> Page:
    # users-sync makes teacher an instructor a few seconds after the stack starts; a
    # login before that gets a token without the instructor's scope.
    teacher = logged_in("teacher")
    within(60, lambda: "instructors" in teacher.user_model().get("groups", []),
           "teacher in the instructors group")
    page = browser_login(browser, "teacher")
    expect(page.locator("h1")).to_have_text("Live class")
    expect(page.locator("#mode")).to_have_text("live (pushed)", timeout=10000)
    return page


class NotebookKernel(Kernel):
    """A kernel started for a notebook the way JupyterLab starts one (a session with the
    notebook's path: jupyter_server tells the kernel), run cell by cell with each cell's
    id in the request's metadata, as JupyterLab sends it."""

    def __init__(self, session: HubSession, path: str) -> None:
        r = session.server_api("POST", "/sessions", json={
            "path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook",
            "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        self.session_id = r.json()["id"]
        super().__init__(session, r.json()["kernel"]["id"])
        self.cell_id: str | None = None

    def send_execute(self, code: str, store_history: bool = True) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "e2e",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "channel": "shell", "buffers": [],
            "metadata": {"cellId": self.cell_id} if self.cell_id else {},
            "content": {"code": code, "silent": False, "store_history": store_history,
                        "user_expressions": {}, "allow_stdin": False}}))
        return msg_id

    def run_cell(self, cell: dict[str, Any]) -> dict[str, str]:
        self.cell_id = cell.get("id")
        try:
            return self.execute(cell["source"])
        finally:
            self.cell_id = None

    def close(self) -> None:
        super().close()
        self.session.server_api("DELETE", f"/sessions/{self.session_id}")

