"""One participant's monster notebooks (issue 13): saved from their real JupyterLab server
while 30 others save normally; the others' saves still reach the board promptly.

The 30 others save without servers of their own (tests/e2e/faults/classroom.py: their
file written as their uid, their event posted with their own token); the monster comes
from a real server. The measured figures: benchmarks/monster_on_stack.py.
"""

from __future__ import annotations

from tests.e2e.compose_stack import Stack
from tests.e2e.faults.classroom import Board, Participant, events_url
from tests.e2e.faults.conftest import ADDRESSES, MONSTER, OTHERS
from tests.e2e.faults.monster import (
    CELLS_PATH,
    OUTPUT_PATH,
    Monster,
    figures,
    percentile,
    warm_up,
    with_monster,
)
from tests.e2e.hubclient import HubSession

# Generous on a 2-core machine shared with other work: the goal is under 1 s (measured by
# the benchmark); these catch a monster holding everybody up (before the render pool:
# 90 s).
P50_BOUND, MAX_BOUND = 1.5, 5.0


def test_the_others_saves_reach_the_board_while_one_saves_monsters(
        stack: Stack, people: dict[str, Participant], monster: HubSession, board: Board):
    others = [people[name] for name in OTHERS]
    url = events_url(ADDRESSES)
    warm_up(others, board, url)
    outcome = with_monster(others, Monster(monster, stack.home / MONSTER, 100_000, 20),
                           board, url)
    lat = outcome.latencies
    print(f"\nothers' save-to-board latency beside the monsters: {figures(lat)} in "
          f"{outcome.rounds} rounds; the monster's own saves took "
          + ", ".join(f"{p} {s:.1f} s" for p, s in outcome.monster_save_seconds.items()))
    assert len(lat) == outcome.rounds * len(others)  # every save reached the board
    assert percentile(lat, 50) < P50_BOUND and max(lat) < MAX_BOUND, figures(lat)
    # The monsters themselves: a placeholder saying why, and a view with the output cut.
    assert outcome.monster[CELLS_PATH]["problem"].startswith("too large to show: 100 000")
    assert outcome.monster[OUTPUT_PATH]["problem"] is None
    view = board.get(f"rendered/{MONSTER}/{OUTPUT_PATH}")
    assert view.status_code == 200 and len(view.content) < 2 * 1024 * 1024
