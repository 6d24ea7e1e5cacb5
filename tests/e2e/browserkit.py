"""Chromium for the end-to-end tests and benchmarks: one way to launch it and one way to
log in through the hub's form, as a participant or an instructor would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, expect, sync_playwright

# No sandbox (root in a container-less CI), and nothing that talks to the internet.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def browser_login(browser: Browser, url: str, name: str, password: str,
                  viewport: dict[str, int] | None = None) -> Page:
    """A new browser context of `name` on `url`: anonymous, it is sent to the hub's login
    page first, as anyone is."""
    context = browser.new_context(viewport=viewport) if viewport else browser.new_context()
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#username_input")).to_be_visible()
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_load_state("networkidle")
    return page
