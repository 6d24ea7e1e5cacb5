"""The live class view with real kernels and a real browser on the board."""

from __future__ import annotations

import json
import time
import uuid

import requests
from playwright.sync_api import Page, expect

from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within

from .conftest import ADDRESSES, DASHBOARD, EVENTS, LIVE
from .kit import EXERCISES, LESSON, NotebookKernel


def tile(board: Page, user: str):
    return board.locator(f'#grid .tile[data-user="{user}"]')


def test_an_error_run_without_saving_is_on_the_board_within_2s(stack: Stack, board: Page,
                                                                 alice: HubSession):
    alice.server_api("PUT", "/contents/scratch.ipynb",
                     json={"type": "notebook", "format": "json", "content": {
                         "cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}})
    kernel = NotebookKernel(alice, "scratch.ipynb")
    try:
        name = f"oops_{uuid.uuid4().hex[:8]}"
        ran = time.monotonic()
        out = kernel.execute(f"{name} + 1")  # raises; the notebook is never saved
        assert f"NameError: name '{name}' is not defined" in out["error"]
        last = tile(board, "alice").locator(".last")
        expect(last).to_contain_text(f"NameError: name '{name}' is not defined", timeout=2000)
        print(f"error in the kernel -> board DOM: {time.monotonic() - ran:.2f}s")
        expect(last).to_have_class("last error")
    finally:
        kernel.close()


def test_alice_at_the_right_exercise_after_the_first_five_cells(stack: Stack, board: Page,
                                                                  alice: HubSession):
    # Her handed-out copy (it arrived at her first start), cells with their ids.
    copy = alice.server_api("GET", f"/contents/{LESSON}").json()["content"]
    code = [c for c in copy["cells"] if c["cell_type"] == "code"]
    kernel = NotebookKernel(alice, LESSON)
    try:
        for cell in code[:5]:
            assert not kernel.run_cell(cell)["error"], cell["source"]
    finally:
        kernel.close()
    # The fifth code cell is the second of "Exercise 2: loops": exercise 3 of 5.
    board.select_option("#lesson", LESSON)
    alice_tile = tile(board, "alice")
    expect(alice_tile).to_have_attribute("data-exercise", "3", timeout=5000)
    expect(alice_tile.locator(".where")).to_have_text(f"3/{len(EXERCISES)}")
    expect(alice_tile.locator(".strip i.current")).to_have_attribute(
        "title", f"3. {EXERCISES[2]}")
    expect(alice_tile.locator(".last")).to_contain_text("print(squares)")
    expect(board.locator('#bars .bar[data-exercise="3"] .n')).to_have_text("1")


def test_help_from_the_notebook_then_stepping_in_from_the_queue(stack: Stack, board: Page,
                                                                  alice: HubSession):
    kernel = NotebookKernel(alice, LESSON)
    try:
        kernel.execute("undefined_thing")
        out = kernel.execute("%help my loop prints nothing")
        assert "Your instructor has your request" in out["stdout"], out
        assert "number 1 of 1" in out["stdout"]
        queued = board.locator('#helpq li[data-user="alice"]')
        expect(queued).to_contain_text("my loop prints nothing", timeout=5000)
        expect(queued.locator(".err")).to_contain_text("NameError")
        expect(board.locator("#help-count")).to_have_text("1")
        # Stepping in from the queue: the instructor's browser lands in her JupyterLab.
        with board.context.expect_page() as opened:
            queued.locator("a.stepin").click()
        lab = opened.value
        lab.wait_for_load_state()
        if "/hub/api/oauth2/authorize" in lab.url:
            lab.click("button[type=submit]")
        lab.wait_for_url(f"{ADDRESSES.user('alice')}lab/tree/{LESSON}*", timeout=60000)
        lab.close()
        # Done: off the queue, and alice's %help says so.
        queued.locator("button.done").click()
        expect(board.locator('#helpq li[data-user="alice"]')).to_have_count(0, timeout=5000)
        out = kernel.execute("%help")
        assert "marked done by teacher" in out["stdout"], out
    finally:
        kernel.close()


def test_a_snippet_pushed_from_the_board_reaches_a_running_participant(
        stack: Stack, board: Page, alice: HubSession):
    marker = f"print('pushed {uuid.uuid4().hex[:8]}')"
    board.locator("#pushbox summary").click()
    board.fill("#push textarea[name=source]", marker)
    sent = time.monotonic()
    board.click("#push button[type=submit]")
    expect(board.locator("#push-status")).to_contain_text("sent", timeout=5000)

    def arrived() -> bool:
        r = alice.server_api("GET", "/contents/instructor.ipynb")
        return r.status_code == 200 and any(
            c["source"] == marker for c in r.json()["content"]["cells"])

    seconds = within(5, arrived, "the snippet in alice's instructor.ipynb")
    print(f"push -> alice's running server: {time.monotonic() - sent:.2f}s ({seconds:.2f}s)")
    # She edits and saves it: the next push arrives beside it, hers stays as she left it.
    r = alice.server_api("GET", "/contents/instructor.ipynb")
    mine = r.json()["content"]
    mine["cells"].append({"cell_type": "code", "metadata": {}, "source": "my_notes = 1",
                          "execution_count": None, "outputs": []})
    assert alice.server_api("PUT", "/contents/instructor.ipynb", json={
        "type": "notebook", "format": "json", "content": mine}).status_code == 200
    board.fill("#push textarea[name=source]", "# second push")
    board.click("#push button[type=submit]")
    within(5, lambda: alice.server_api(
        "GET", "/contents/instructor (updated).ipynb").status_code == 200,
        "the new version beside hers")
    kept = alice.server_api("GET", "/contents/instructor.ipynb").json()["content"]
    assert kept["cells"][-1]["source"] == "my_notes = 1"


def test_what_participants_write_is_shown_as_text_and_stays_theirs(
        stack: Stack, board: Page, alice: HubSession, teacher_token: str):
    token = alice.new_token()
    auth = {"Authorization": f"token {token}"}
    payload = "<img src=x onerror=\"document.title='pwned'\"><script>alert(1)</script>"
    kernel = NotebookKernel(alice, LESSON)
    try:
        kernel.execute(f"raise ValueError({payload!r})")
    finally:
        kernel.close()
    last = tile(board, "alice").locator(".last")
    expect(last).to_contain_text("<img src=x onerror", timeout=5000)  # as text
    assert tile(board, "alice").locator("img, script").count() == 0
    assert board.title() != "pwned"
    # Posting executions as someone else, reading the queue or others' requests: refused.
    batch = {"type": "executions", "user": "bob", "kernel": "k", "executions": [
        {"seq": 1, "ok": True, "head": "forged"}]}
    r = requests.post(EVENTS, json=batch, headers=auth, timeout=10)
    assert r.status_code == 403 and "alice" in r.json()["message"]
    assert requests.get(f"{LIVE}/api/help", headers=auth, timeout=10).status_code == 403
    assert requests.get(f"{LIVE}/api/board", headers=auth, timeout=10).status_code == 403
    mine = requests.get(f"{LIVE}/help/mine", headers=auth, timeout=10).json()
    assert all(r["user"] == "alice" for r in mine["recent"])
    teacher = {"Authorization": f"token {teacher_token}"}
    r = requests.get(f"{LIVE}/export.csv", headers=teacher, timeout=30)
    assert r.status_code == 200 and "alice" in r.text and "forged" not in r.text
    assert requests.get(f"{DASHBOARD}/live/export.json", headers=teacher,
                        timeout=30).status_code == 200
    json.loads(requests.get(f"{LIVE}/export.json", headers=teacher, timeout=30).text)
