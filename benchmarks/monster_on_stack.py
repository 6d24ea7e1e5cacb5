"""Save-to-board latency of 30 participants while one saves monsters, on the real stack.

Brings up its own stack (compose project `workshop-bench-faults`, loopback ports 844-847,
everything under tmp/bench-faults; taken down at the end), with 30 participants, mallory
and an instructor. The others save without servers of their own (their notebook written
into their home as their uid, a save event posted with their own hub token to where the
save hook posts); mallory saves from her real JupyterLab server, through the proxy: a
notebook of 100 000 code cells and one whose cell printed 20 MiB. The latency of a save
is from its start until the instructor's board (`/api/summary/<path>` through the proxy,
polled every 50 ms by one watcher, so up to 50 ms of it is the polling) shows that file.
The scenario is tests/e2e/faults/monster.py, the one the fault suite runs with fewer
rounds.

First a baseline (the others alone, `--baseline-rounds` rounds), then with mallory: the
others save in rounds from her first save until the board shows both monsters, plus one.

    .venv/bin/python benchmarks/monster_on_stack.py
    .venv/bin/python benchmarks/monster_on_stack.py --spread 1 --baseline-rounds 20
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "services")]

from tests.e2e import hubclient  # noqa: E402
from tests.e2e.compose_stack import Stack, local_addresses  # noqa: E402
from tests.e2e.faults.classroom import (  # noqa: E402
    Board,
    events_url,
    mint_tokens,
    participants,
    password,
    users_txt,
    wait_in_force,
)
from tests.e2e.faults.monster import (  # noqa: E402
    Monster,
    percentile,
    rounds,
    warm_up,
    with_monster,
)

PROJECT, PORT = "workshop-bench-faults", 844
MONSTER, TEACHER = "mallory", "teacher"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--others", type=int, default=30, help="participants saving normally")
    parser.add_argument("--spread", type=float, default=2.0,
                        help="seconds per round (each of the others saves once a round)")
    parser.add_argument("--baseline-rounds", type=int, default=10)
    parser.add_argument("--cells", type=int, default=100_000, help="cells of the first monster")
    parser.add_argument("--output-mib", type=int, default=20, help="MiB of the second's output")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def row(name: str, latencies: list[float]) -> str:
    return (f"{name:<26} | {percentile(latencies, 50):6.2f} | {percentile(latencies, 95):6.2f} "
            f"| {max(latencies):6.2f} | {len(latencies):>7}")


def main(args: argparse.Namespace) -> None:
    names = [f"p{n:03d}" for n in range(args.others)]
    addresses = local_addresses(PORT)
    stack = Stack(ROOT / "tmp" / "bench-faults", project=PROJECT, port=PORT)
    stack.down()
    stack.prepare(users_txt([*names, MONSTER], [TEACHER]), {})
    try:
        print(f"stack healthy after {stack.up():.1f} s", flush=True)
        tokens = mint_tokens([*names, TEACHER], addresses)
        board = Board(addresses, tokens[TEACHER])
        wait_in_force(board, len(names) + 1)
        people = participants({n: tokens[n] for n in names}, stack.home)
        others = [people[n] for n in names]
        url = events_url(addresses)
        warm_up(others, board, url)
        started = time.monotonic()
        baseline, _ = rounds(others, board, url, spread=args.spread, seed=args.seed,
                             done=lambda: True, min_rounds=args.baseline_rounds,
                             max_seconds=args.baseline_rounds * args.spread + 60)
        print(f"baseline done in {time.monotonic() - started:.0f} s", flush=True)
        session = hubclient.started(MONSTER, password(MONSTER), addresses)
        started = time.monotonic()
        outcome = with_monster(others, Monster(session, stack.home / MONSTER, args.cells,
                                               args.output_mib), board, url,
                               spread=args.spread, seed=args.seed)
        print(f"with the monster done in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        (stack.workdir / "hub.log").write_text(stack.logs())
        stack.down()
    print(f"\npython {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {args.others} others, each saving once every "
          f"{args.spread:g} s")
    print("\nothers' save-to-board (s)  |   p50  |   p95  |   max  | samples")
    print("---------------------------|--------|--------|--------|--------")
    print(row("alone", baseline))
    print(row("beside the monster saves", outcome.latencies))
    for path, facts in outcome.monster.items():
        shown = facts["problem"] or f"{facts['cells']} cell(s), rendered"
        print(f"{MONSTER}'s {path}: saved by her server in "
              f"{outcome.monster_save_seconds[path]:.1f} s; on the board: {shown}")
    print("command: " + " ".join([os.path.relpath(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main(parse_args())
