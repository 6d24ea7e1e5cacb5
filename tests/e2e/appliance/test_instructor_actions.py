"""Instructor actions during class: step into a participant's server, restart a stuck
one, hand out new material into running servers; each action logged."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.appliance.conftest import ADDRESSES, DASHBOARD, step_in
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession

HELP = "day1/help.ipynb"


def server_pid(stack: Stack, user: str) -> int:
    out = stack.exec("pgrep", "-u", user, "-f", "jupyterhub-singleuser", check=False).stdout
    return int(out.split()[0]) if out.split() else 0


def bob_row(instructor: Page):
    instructor.goto(f"{DASHBOARD}/")
    return instructor.locator('tr[data-user="bob"]')


def test_instructor_steps_into_bobs_notebook(stack: Stack, instructor: Page, bob: HubSession):
    bob.server_api("PUT", "/contents/day1", json={"type": "directory"})
    r = bob.save_notebook(HELP, [{"cell_type": "markdown", "metadata": {},
                                  "source": "I am stuck here"}])
    assert r.status_code in (200, 201)
    row = bob_row(instructor)
    expect(row.locator(".state")).to_have_text("running", timeout=10000)
    link = row.locator(f'td[data-path="{HELP}"] a.open')
    expect(link).to_be_visible(timeout=10000)
    lab = step_in(instructor, link)
    lab.wait_for_url(f"{ADDRESSES.user('bob')}lab/tree/{HELP}*", timeout=60000)
    # The browser really is in bob's JupyterLab, on his notebook.
    expect(lab).to_have_title(re.compile(r"help\.ipynb"), timeout=60000)
    lab.close()


def test_participants_cannot_enter_each_others_servers(stack: Stack, alice: HubSession,
                                                       bob: HubSession):
    r = bob.http.get(ADDRESSES.user("alice", "lab"), timeout=30)
    assert r.status_code == 403
    r = alice.http.get(ADDRESSES.user("teacher", "api/status"), timeout=30)
    assert r.status_code in (403, 404, 503)


def test_restart_brings_bob_back_with_his_files(stack: Stack, instructor: Page,
                                                 bob: HubSession):
    before = server_pid(stack, "bob")
    assert before
    row = bob_row(instructor)
    instructor.once("dialog", lambda dialog: dialog.accept())  # "Restart bob's server?"
    row.locator("button.act").click()
    expect(row.locator(".result")).to_contain_text("restarted", timeout=150000)
    after = server_pid(stack, "bob")
    assert after and after != before
    assert (stack.home / "bob" / HELP).exists()
    # A restarted server is a new OAuth client: bob's browser logs in to it again, silently.
    bob.open_lab()
    assert bob.server_api("GET", f"/contents/{HELP}").status_code == 200
    instructor.goto(f"{DASHBOARD}/")
    expect(instructor.locator("#actions")).to_contain_text("restart", timeout=10000)
    expect(instructor.locator("#actions")).to_contain_text("teacher")


def hand_out(instructor: Page) -> Page:
    page = instructor.context.new_page()
    page.goto(f"{DASHBOARD}/handout")
    page.click("#handout")
    expect(page.locator("#report")).to_be_visible(timeout=60000)
    return page


def test_hand_out_reaches_running_servers_and_never_overwrites(
        stack: Stack, instructor: Page, alice: HubSession, bob: HubSession):
    # The instructor uploads a new exercise through the page.
    page = instructor.context.new_page()
    page.goto(f"{DASHBOARD}/handout")
    page.set_input_files("input[name=files]", files=[
        {"name": "task.py", "mimeType": "text/x-python", "buffer": b"# task, version 1\n"}])
    page.fill("input[name=folder]", "day2")
    page.click("form[enctype] button")
    expect(page.locator("#uploaded")).to_contain_text("day2/task.py")
    assert (stack.materials / "day2" / "task.py").read_bytes() == b"# task, version 1\n"

    report = hand_out(instructor)
    for user in ("alice", "bob"):
        expect(report.locator(f'tr[data-user="{user}"] td.copied')).to_contain_text(
            "day2/task.py")
    # Straight into the running server: its contents API sees the file at once.
    assert alice.server_api("GET", "/contents/day2/task.py").status_code == 200
    assert (stack.home / "bob" / "day2" / "task.py").read_text() == "# task, version 1\n"

    # bob works on his copy; the instructor then fixes the original and hands out again.
    r = bob.server_api("PUT", "/contents/day2/task.py",
                       json={"type": "file", "format": "text", "content": "# bob's work\n"})
    assert r.status_code == 200, r.text
    (stack.materials / "day2" / "task.py").write_text("# task, version 2\n")
    report = hand_out(instructor)
    bob_line = report.locator('tr[data-user="bob"]')
    expect(bob_line.locator("td.renamed")).to_contain_text("day2/task (updated).py")
    assert (stack.home / "bob" / "day2" / "task.py").read_text() == "# bob's work\n"
    updated = stack.home / "bob" / "day2" / "task (updated).py"
    assert updated.read_text() == "# task, version 2\n"
    assert updated.stat().st_uid == stack.uid_of("bob")
    # alice had not touched hers, yet hers is not replaced either: it is hers now.
    assert (stack.home / "alice" / "day2" / "task.py").read_text() == "# task, version 1\n"
    time.sleep(0.5)
    expect(report.locator("table.actions")).to_contain_text("handout")
