"""The live class view against a real stack of its own: real hub, real kernels (the
system-wide IPython configuration loads the feed), a real browser on the board.

Its own compose project (workshop-live-e2e) on loopback ports 900-903, scratch data under
tmp/e2e-live; 60 participants in users.txt (alice, bob, p03..p60) for the class view.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import browserkit, hubclient
from tests.e2e.browserkit import chromium
from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.hubclient import HubSession, started, within

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
    with s.running("live"):
        yield s


def logged_in(name: str) -> HubSession:
    return hubclient.logged_in(name, PASSWORDS[name], ADDRESSES)


def with_server(name: str) -> HubSession:
    return started(name, PASSWORDS[name], ADDRESSES)


@pytest.fixture(scope="package")
def alice(stack: Stack) -> HubSession:
    return with_server("alice")


@pytest.fixture(scope="package")
def teacher_token(stack: Stack) -> str:
    return logged_in("teacher").new_token()


@pytest.fixture(scope="package")
def browser(stack: Stack) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def browser_login(browser: Browser, name: str, url: str = LIVE) -> Page:
    return browserkit.browser_login(browser, url, name, PASSWORDS[name],
                                    viewport={"width": 1920, "height": 1080})


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
