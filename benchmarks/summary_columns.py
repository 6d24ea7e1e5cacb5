"""What writing one notebook's summary costs as the board grows to many columns.

The renderer keeps one summary (a board column) per notebook name. For N columns, each
with P participants' tiny notebooks rendered in this process, it then measures
`write_summary` of one column after one participant's save (median and max of
`--repeat` writes) and the bytes written to disk for it. A write that touched every column
(the index rewritten whole) would grow with N; one that touches its own column stays flat.

    .venv/bin/python benchmarks/summary_columns.py                    # N = 10, 100, 1000
    .venv/bin/python benchmarks/summary_columns.py --services ../main/services   # before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", default="10,100,1000", help="numbers of columns N")
    parser.add_argument("--participants", type=int, default=3, help="participants per column")
    parser.add_argument("--repeat", type=int, default=30, help="summary writes measured per N")
    parser.add_argument("--services", type=Path, default=HERE.parent / "services",
                        help="the services folder whose dashboard is measured")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
sys.path.insert(0, str((ARGS.services if ARGS else HERE.parent / "services").resolve()))

from dashboard.render import Renderer  # noqa: E402


def tiny(user: str, n: int) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": f"x = {n}",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": f"{user} {n}\n"}]}]})


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def measure(columns: int, participants: int, repeat: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="summary_columns-"))
    try:
        r = Renderer(root)
        users = [f"p{i:02d}" for i in range(participants)]
        for c in range(columns):
            path = f"col{c:04d}.ipynb"
            for user in users:
                r.render(user, path, tiny(user, c), 1)
            r.write_summary(path)
        seconds, written = [], []
        for k in range(repeat):
            path = f"col{(k * 7919) % columns:04d}.ipynb"
            r.render(users[0], path, tiny(users[0], k), 2 + k)  # a save, outside the timing
            before, started = written_bytes(), time.perf_counter()
            r.write_summary(path)
            seconds.append(time.perf_counter() - started)
            written.append(written_bytes() - before)
        return {"median": statistics.median(seconds), "max": max(seconds),
                "bytes": statistics.median(written)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(args: argparse.Namespace) -> None:
    sizes = [int(n) for n in args.columns.split(",")]
    print(f"dashboard from {args.services}; {args.participants} participants per column, "
          f"{args.repeat} summary writes per N", flush=True)
    rows = []
    for n in sizes:
        rows.append((n, measure(n, args.participants, args.repeat)))
        print(f"N={n}: done", flush=True)
    print("\ncolumns N | write_summary median | max      | bytes written per summary")
    print("----------|----------------------|----------|--------------------------")
    for n, m in rows:
        print(f"{n:9d} | {m['median'] * 1000:17.1f} ms | {m['max'] * 1000:5.1f} ms | "
              f"{m['bytes'] / 1024:10.0f} KiB")
    print("command: " + " ".join([os.path.relpath(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main(ARGS)
