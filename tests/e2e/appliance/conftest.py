"""One real stack for all tests in this package: built, started, torn down by PID/project."""

from __future__ import annotations

import os
from collections.abc import Iterator

import bcrypt
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e import browserkit, hubclient
from tests.e2e.browserkit import chromium
from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.hubclient import HubSession, started

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "erin": "erin-pw", "teacher": "teacher-pw"}
# bob's password is a bcrypt hash; line 5 is deliberately broken and must be skipped.
BROKEN_LINE = 5
USERS = f"""# e2e participants
alice:{PASSWORDS["alice"]}
bob:{bcrypt.hashpw(PASSWORDS["bob"].encode(), bcrypt.gensalt(rounds=4)).decode()}
erin:{PASSWORDS["erin"]}
this line is broken
[instructors]
teacher:{PASSWORDS["teacher"]}
"""
# This package's stack: loopback ports 980-983, http://lab.localhost:980 for browsers.
# WORKSHOP_E2E_PORT/_PROJECT/_COMPOSE run the same suite on another stack beside it, e.g.
# with the fork spawner: WORKSHOP_E2E_COMPOSE=tests/e2e/fork/compose.fork.yml.
ADDRESSES = local_addresses(int(os.environ.get("WORKSHOP_E2E_PORT", "980")))
PROJECT = os.environ.get("WORKSHOP_E2E_PROJECT", "workshop-e2e")
EXTRA_COMPOSE = tuple(ROOT / f for f in os.environ.get("WORKSHOP_E2E_COMPOSE", "").split(":")
                      if f)
BASE = ADDRESSES.public_url
DASHBOARD = ADDRESSES.service("dashboard").rstrip("/")
EVENTS = f"{DASHBOARD}/events"
MATERIALS = {"welcome.md": "# Welcome\n", "exercise.py": "print('hello')\n"}


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    workdir = "e2e" if PROJECT == "workshop-e2e" else f"e2e-{PROJECT}"
    s = Stack(ROOT / "tmp" / workdir, project=PROJECT, port=ADDRESSES.port,
              extra_files=EXTRA_COMPOSE)
    s.down()  # a stack left over from an interrupted run
    s.prepare(USERS, MATERIALS)
    with s.running("appliance"):
        yield s


def logged_in(stack: Stack, name: str) -> HubSession:
    return hubclient.logged_in(name, PASSWORDS[name])


def with_server(stack: Stack, name: str) -> HubSession:
    """Logged in, server started, and JupyterLab opened once (OAuth done), like a browser."""
    return started(name, PASSWORDS[name])


@pytest.fixture(scope="package")
def alice(stack: Stack) -> HubSession:
    return with_server(stack, "alice")


@pytest.fixture(scope="package")
def bob(stack: Stack) -> HubSession:
    return with_server(stack, "bob")


@pytest.fixture(scope="package")
def teacher_token(stack: Stack) -> str:
    return logged_in(stack, "teacher").new_token()


@pytest.fixture(scope="package")
def browser(stack: Stack) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def browser_login(browser: Browser, name: str) -> Page:
    return browserkit.browser_login(browser, f"{DASHBOARD}/", name, PASSWORDS[name])


@pytest.fixture(scope="package")
def instructor(browser: Browser) -> Page:
    page = browser_login(browser, "teacher")
    expect(page.locator("h1")).to_have_text("Who is where")
    return page


def step_in(instructor: Page, link: Locator) -> Page:
    """Click a board link into a participant's server, confirming JupyterHub's one-time
    "authorize" page for entering somebody else's server: the new tab."""
    with instructor.context.expect_page() as opened:
        link.click()
    lab = opened.value
    lab.wait_for_load_state()
    if "/hub/api/oauth2/authorize" in lab.url:
        lab.click("button[type=submit]")
    return lab
