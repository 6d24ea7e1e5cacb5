"""The live class view against a real stack of its own: real hub, real kernels (the
system-wide IPython configuration loads the feed), a real browser on the board.

Its own compose project (workshop-live-e2e) on loopback ports 900-903, scratch data under
tmp/e2e-live; 60 participants in users.txt (alice, bob, p03..p60) for the class view.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.appliance.conftest import CHROMIUM_ARGS
from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.hubclient import HubSession, within

from .kit import LESSON, LESSON_JSON

ADDRESSES = local_addresses(900)
DASHBOARD = ADDRESSES.service("dashboard").rstrip("/")
LIVE = f"{DASHBOARD}/live"
EVENTS = f"{DASHBOARD}/events"
CLASS = ["alice", "bob", *(f"p{n:02d}" for n in range(3, 61))]  # 60 participants
PASSWORDS = {name: f"{name}-pw" for name in [*CLASS, "teacher"]}
USERS = "\n".join(f"{n}:{PASSWORDS[n]}" for n in CLASS) + \
    f"\n[instructors]\nteacher:{PASSWORDS['teacher']}\n"
@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    s = Stack(ROOT / "tmp" / "e2e-live", project="workshop-live-e2e", port=ADDRESSES.port)
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
