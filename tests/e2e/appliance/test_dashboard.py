"""The instructor dashboard in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import io
import time
import uuid
import zipfile

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.e2e.appliance.conftest import BASE, DASHBOARD, PASSWORDS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within

NOTEBOOK = "day1/live.ipynb"


def code_cell(source: str, outputs: list[dict], count: int) -> dict:
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "source": source,
            "outputs": outputs}


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def error() -> dict:
    return {"output_type": "error", "ename": "ZeroDivisionError",
            "evalue": "division by zero", "traceback": ["ZeroDivisionError: division by zero"]}


@pytest.fixture(scope="module")
def alice_notebook(alice: HubSession) -> HubSession:
    alice.server_api("PUT", "/contents/day1", json={"type": "directory"})
    return alice


def test_anonymous_visitors_go_to_the_hub_login(stack: Stack):
    r = requests.get(f"{DASHBOARD}/", timeout=30)
    assert r.url.startswith(f"{BASE}/hub/login")
    assert 'id="username_input"' in r.text and "Who is where" not in r.text


def test_participant_gets_403(browser: Browser):
    page = browser.new_context().new_page()
    page.goto(f"{BASE}/hub/login")
    page.fill("#username_input", "bob")
    page.fill("#password_input", PASSWORDS["bob"])
    page.click("#login_submit")
    page.wait_for_load_state("networkidle")
    response = page.goto(f"{DASHBOARD}/")
    assert response is not None and response.status == 403
    assert "not an instructor" in page.content()
    for path in ("/api/index", f"/summary/{NOTEBOOK}", "/users"):
        assert page.goto(f"{DASHBOARD}{path}").status == 403


def test_new_cell_appears_live_and_error_flag(stack: Stack, instructor: Page,
                                              alice_notebook: HubSession, browser: Browser):
    summary = instructor.context.new_page()
    summary.goto(f"{DASHBOARD}/summary/{NOTEBOOK}")
    expect(summary.locator("h1")).to_have_text(NOTEBOOK)

    marker = f"hello-{uuid.uuid4().hex[:8]}"
    r = alice_notebook.save_notebook(NOTEBOOK, [code_cell(f"print('{marker}')",
                                                          [stream(marker + "\n")], 1)])
    saved = time.monotonic()
    assert r.status_code in (200, 201), r.text
    # Within 2 s, without a reload: the DOM of the open page changes by itself.
    expect(summary.locator("#user-alice")).to_contain_text(marker, timeout=2000)
    print(f"save -> summary DOM: {time.monotonic() - saved:.2f}s")

    # The last executed cell raises: the flag appears on the board and the summary.
    alice_notebook.save_notebook(NOTEBOOK, [
        code_cell(f"print('{marker}')", [stream(marker + "\n")], 1),
        code_cell("1 / 0", [error()], 2)])
    cell = instructor.locator(f'tr[data-user="alice"] td[data-path="{NOTEBOOK}"]')
    expect(cell).to_have_class("error", timeout=5000)
    expect(cell).to_contain_text("error")
    expect(summary.locator("#user-alice")).to_have_class("participant error", timeout=5000)
    expect(summary.locator("#user-alice")).to_contain_text("ZeroDivisionError")

    # The full view: the rendered notebook in a sandboxed frame.
    view = instructor.context.new_page()
    view.goto(f"{DASHBOARD}/view/alice/{NOTEBOOK}")
    frame = view.frame_locator("#notebook")
    expect(frame.locator("body")).to_contain_text(marker)
    assert view.locator("#notebook").get_attribute("sandbox") == ""

    stack.workdir.joinpath("screenshots").mkdir(exist_ok=True)
    instructor.screenshot(path=str(stack.workdir / "screenshots" / "dashboard-index.png"),
                          full_page=True)
    summary.screenshot(path=str(stack.workdir / "screenshots" / "dashboard-summary.png"),
                       full_page=True)


def test_adding_a_participant_through_the_form(instructor: Page):
    page = instructor.context.new_page()
    page.goto(f"{DASHBOARD}/users")
    page.fill("input[name=name]", "frank")
    page.fill("input[name=password]", "frank-pw")
    page.click("form.add button")
    expect(page.locator("#added")).to_contain_text("frank")
    within(5, lambda: HubSession("frank").can_login("frank-pw"), "frank logs in")
    # A bad name is refused with a message, and nothing is written.
    page.goto(f"{DASHBOARD}/users")
    page.fill("input[name=name]", "root")
    page.click("form.add button")
    expect(page.locator("#error")).to_contain_text("reserved")


def test_forged_form_posts_are_refused(stack: Stack, instructor: Page):
    # The instructor's own session cookie, but not our form (no CSRF token): refused.
    instructor.goto(f"{DASHBOARD}/")
    status = instructor.evaluate("""async (url) => (await fetch(url, {method: "POST",
        body: new URLSearchParams({name: "mallory", password: "x"})})).status""",
                                 f"{DASHBOARD}/users")
    assert status == 403
    anonymous = requests.post(f"{DASHBOARD}/users", data={"name": "mallory", "password": "x"},
                              timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302  # to the login
    assert "mallory" not in stack.users_file.read_text()


def test_zip_of_everyones_notebook_and_health(teacher_token: str, alice_notebook: HubSession):
    auth = {"Authorization": f"token {teacher_token}"}
    r = requests.get(f"{DASHBOARD}/download/{NOTEBOOK}", headers=auth, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert f"alice/{NOTEBOOK}" in names
    # Anonymous callers learn only that it is up; instructors get the figures.
    assert requests.get(f"{DASHBOARD}/health", timeout=10).json() == {"status": "ok"}
    health = requests.get(f"{DASHBOARD}/health", headers=auth, timeout=10).json()
    assert isinstance(health["queue"], int) and health["renders"] >= 1
    assert health["last_render"].endswith("+00:00")
    assert 0 < health["host_memory"]["used_mb"] < health["host_memory"]["total_mb"]
    assert health["running_servers"] >= 2  # alice and bob at least
