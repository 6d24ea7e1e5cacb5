"""The class at a glance: 60 participants at different exercises on one 1920 x 1080
screen, without scrolling. The screenshot is kept: tmp/e2e-live/screenshots/ and
tmp/live-class-60.png.

alice's executions come from her real kernel (test_live_class.py); the other 59 post
executions as their kernels would, each with their own real hub token.
"""

from __future__ import annotations

import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
from playwright.sync_api import Page, expect

from dashboard.lesson import source_hash
from tests.e2e.compose_stack import ROOT, Stack

from .conftest import CLASS, EVENTS, logged_in
from .kit import LESSON, LESSON_CELLS

CODE = [c for c in LESSON_CELLS if c["cell_type"] == "code"]
ERRORS = [("NameError", "name 'numbers' is not defined"),
          ("TypeError", "unsupported operand type(s) for +: 'int' and 'str'"),
          ("IndexError", "list index out of range")]


def executions(rng: random.Random, reached: int) -> list[dict]:
    """A participant who ran the lesson's code cells up to `reached` (an index), some of
    them more than once, some failing; a few stuck on the same error for minutes."""
    now = datetime.now(UTC)
    out, seq = [], 0
    stuck = rng.random() < 0.12
    for i, cell in enumerate(CODE[:reached + 1]):
        tries = 1 + (rng.random() < 0.3)
        for t in range(tries):
            seq += 1
            failed = t + 1 < tries or (i == reached and rng.random() < 0.25)
            name, message = rng.choice(ERRORS)
            minutes = (reached - i) * 2 + (tries - t)
            out.append({"seq": seq, "path": LESSON, "cell": cell["id"], "count": seq,
                        "ok": not failed, "error": {"name": name, "message": message}
                        if failed else None, "duration": round(rng.uniform(0.001, 2), 3),
                        "at": (now - timedelta(minutes=minutes)).isoformat(),
                        "head": cell["source"].split("\n")[0],
                        "source_hash": source_hash(cell["source"])})
    if stuck and out:
        name, message = ERRORS[0]
        for minutes in (5, 3, 1):
            seq += 1
            out.append({**out[-1], "seq": seq, "ok": False, "count": seq,
                        "error": {"name": name, "message": message},
                        "at": (now - timedelta(minutes=minutes)).isoformat()})
    return out


def post_class(users: list[str]) -> None:
    rng = random.Random(60)
    plan = {u: rng.randrange(-1, len(CODE)) for u in users}

    def one(user: str) -> None:
        token = logged_in(user).new_token()
        auth = {"Authorization": f"token {token}"}
        reached = plan[user]
        if reached >= 0:
            batch = {"type": "executions", "user": user, "kernel": f"sim-{user}",
                     "executions": executions(random.Random(user), reached)}
            r = requests.post(EVENTS, json=batch, headers=auth, timeout=30)
            assert r.status_code == 201, r.text
        if user in ("p07", "p23", "p41"):
            r = requests.post(EVENTS, headers=auth, timeout=30, json={
                "type": "help", "user": user, "path": LESSON,
                "message": "my function returns None and I do not see why"})
            assert r.status_code == 201, r.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, users))


def test_sixty_participants_on_one_screen(stack: Stack, board: Page):
    post_class([u for u in CLASS if u != "alice"])
    board.reload()
    board.select_option("#lesson", LESSON)
    expect(board.locator("#grid .tile")).to_have_count(60, timeout=10000)
    expect(board.locator("#helpq li[data-user]")).to_have_count(3, timeout=10000)
    expect(board.locator("#grid .tile.stuck").first).to_be_visible(timeout=10000)
    board.wait_for_timeout(1500)  # the chart image
    # One screen: nothing below the fold.
    height = board.evaluate("document.documentElement.scrollHeight")
    assert height <= 1080, f"the class view is {height}px high"
    shots = stack.workdir / "screenshots"
    shots.mkdir(exist_ok=True)
    board.screenshot(path=str(shots / "live-class-60.png"))
    shutil.copy(shots / "live-class-60.png", ROOT / "tmp" / "live-class-60.png")
