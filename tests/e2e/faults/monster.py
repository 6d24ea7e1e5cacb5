"""One participant saves monsters from their real server while the others save normally.

The monsters (what a loop in a participant's notebook can make, saved by JupyterLab's own
contents API through the proxy): 100 000 code cells, and one cell with a 20 MiB output.
The others (Participant.write + their own token's save event, see classroom.py) save the
ordinary day-one notebook in rounds: each round all of them once, spread evenly over
`spread` seconds, in a random order. A save's latency is from its start (before the file
is written) until the instructor's board (`/api/summary/day1/intro.ipynb`, polled by one
Watcher every 50 ms, so the figures carry up to that much extra) shows the saved file.

Shared by tests/e2e/faults/test_monster.py and benchmarks/monster_on_stack.py.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.e2e.faults.classroom import Board, Participant, Watcher, notebook, save_event
from tests.e2e.hubclient import HubSession, within

PATH = "day1/intro.ipynb"
CELLS_PATH, OUTPUT_PATH = "monster/cells.ipynb", "monster/output.ipynb"
WATCH_INTERVAL = 0.05
# JupyterLab's server validates a saved notebook against the nbformat schema: 100 000
# cells took 13 s of its (niced) CPU on a quiet 2-core machine, minutes on a busy one.
MONSTER_SAVE_TIMEOUT = 300


def monster_cells(count: int) -> list[dict[str, Any]]:
    return [{"cell_type": "code", "id": f"c{n}", "metadata": {}, "execution_count": None,
             "outputs": [], "source": ""} for n in range(count)]


def monster_output(mib: int) -> list[dict[str, Any]]:
    line = "0123456789" * (mib * 1024 * 1024 // 10)
    return [{"cell_type": "code", "id": "big", "metadata": {}, "execution_count": 1,
             "source": "print(line)",
             "outputs": [{"output_type": "stream", "name": "stdout", "text": line + "\n"}]}]


def save(who: Participant, events_url: str, marker: str) -> tuple[float, int]:
    """One ordinary save: (when it started, the saved file's mtime_ns)."""
    started = time.monotonic()
    mtime = who.write(PATH, notebook(marker))
    r = requests.post(events_url, json=save_event(who.name, PATH), headers=who.auth,
                      timeout=10)
    assert r.status_code == 201, f"{who.name}'s save event: {r.status_code} {r.text}"
    return started, mtime


@dataclass
class Monster:
    """The monster's saves, from its server, in a thread of their own."""

    session: HubSession
    home: Path  # the monster's home on this machine (to read the saved files' mtimes)
    cells: int
    output_mib: int
    saved: dict[str, tuple[float, int]] = field(default_factory=dict)  # seconds, mtime_ns
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name="monster")

    def _run(self) -> None:
        self.session.server_api("PUT", "/contents/monster", json={"type": "directory"})
        for path, cells in ((CELLS_PATH, monster_cells(self.cells)),
                            (OUTPUT_PATH, monster_output(self.output_mib))):
            started = time.monotonic()
            try:
                r = self.session.save_notebook(path, cells, timeout=MONSTER_SAVE_TIMEOUT)
            except requests.RequestException as e:
                self.errors.append(f"{path}: {e}")
                continue
            if r.status_code not in (200, 201):
                self.errors.append(f"{path}: {r.status_code} {r.text[:200]}")
                continue
            self.saved[path] = (time.monotonic() - started,
                                (self.home / path).stat().st_mtime_ns)

    def shown(self, board: Board) -> dict[str, dict[str, Any]]:
        """The board's facts for each monster notebook whose saved file it shows."""
        notebooks = board.get("api/index").json()["notebooks"]
        found = {}
        for path, (_, mtime) in list(self.saved.items()):
            facts = notebooks.get(path, {}).get("participants", {}).get(self.session.name)
            if facts and facts["mtime"] == mtime / 1e9:
                found[path] = facts
        return found


@dataclass
class Outcome:
    latencies: list[float]
    rounds: int
    monster: dict[str, dict[str, Any]]  # path -> the board's facts
    monster_save_seconds: dict[str, float]


def warm_up(others: list[Participant], board: Board, events_url: str) -> None:
    """Everyone's notebook on the board once, so the rounds measure updates, not firsts."""
    with Watcher(board, PATH, WATCH_INTERVAL) as watcher:
        saved = [(who, save(who, events_url, f"warm-{who.name}")[1]) for who in others]
        for who, mtime in saved:
            assert watcher.wait_for(who.name, mtime, 60) is not None, f"{who.name} not shown"


def rounds(others: list[Participant], board: Board, events_url: str, *, spread: float,
           seed: int, done: Any, min_rounds: int, max_seconds: float) -> tuple[list[float],
                                                                         int]:
    """Rounds of saves until `done()` holds after `min_rounds` (or `max_seconds` passed);
    every save's latency."""
    rng = random.Random(seed)
    pending: list[tuple[str, int, float]] = []
    started = time.monotonic()
    count = 0
    with Watcher(board, PATH, WATCH_INTERVAL) as watcher:
        while count < min_rounds or not done():
            if time.monotonic() - started > max_seconds:
                break
            count += 1
            begin = time.monotonic()
            for k, who in enumerate(rng.sample(others, len(others))):
                pause = begin + k * spread / len(others) - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                at, mtime = save(who, events_url, f"round {count} of {who.name}")
                pending.append((who.name, mtime, at))
            time.sleep(max(0.0, begin + spread - time.monotonic()))
        latencies = []
        for name, mtime, at in pending:
            seen = watcher.wait_for(name, mtime, 60)
            assert seen is not None, f"{name}'s save (mtime {mtime}) never reached the board"
            latencies.append(seen - at)
        assert not watcher.errors[:1], f"the board did not answer: {watcher.errors[:3]}"
    return latencies, count


def with_monster(others: list[Participant], monster: Monster, board: Board,
                 events_url: str, *, spread: float = 2.0, seed: int = 1,
                 min_rounds: int = 3, max_seconds: float = MONSTER_SAVE_TIMEOUT) -> Outcome:
    """The others save in rounds from the monster's first save until the board shows both
    monsters (then one more round)."""
    monster.thread.start()
    shown: dict[str, dict[str, Any]] = {}
    after: list[int] = []

    def done() -> bool:
        if len(shown) < 2:
            shown.update(monster.shown(board) if not monster.thread.is_alive() else {})
            return False
        after.append(1)
        return len(after) > 1  # one whole round after the second monster was shown

    latencies, count = rounds(others, board, events_url, spread=spread, seed=seed,
                              done=done, min_rounds=min_rounds, max_seconds=max_seconds)
    monster.thread.join(MONSTER_SAVE_TIMEOUT)
    assert not monster.errors, f"the monster's own saves failed: {monster.errors}"
    within(60, lambda: len(monster.shown(board)) == 2, "both monsters on the board")
    return Outcome(latencies, count, monster.shown(board),
                   {path: seconds for path, (seconds, _) in monster.saved.items()})


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def figures(latencies: list[float]) -> str:
    return (f"p50 {percentile(latencies, 50):.2f} s, p95 {percentile(latencies, 95):.2f} s, "
            f"max {max(latencies):.2f} s, {len(latencies)} saves")
