"""What the execution feed costs a participant's kernel per executed cell.

Two measurements, in a real IPython shell in this process with the extension loaded the
way the kernel configuration loads it, its sender posting to a local stand-in of the
dashboard (so the background thread really runs and competes for the GIL):

* hooks: the time the extension's `pre_run_cell` + `post_run_cell` take on the kernel's
  thread for one cell (building the record and queueing it), measured around the calls;
* cell: `run_cell("x = 1")` with and without the extension, alternating in blocks; the
  difference of the medians is what a participant's cell pays in all.

    .venv/bin/python benchmarks/kernel_overhead.py
    .venv/bin/python benchmarks/kernel_overhead.py --cells 20000

Goal (issue 14): at most 1 ms per cell (median).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

import etc.ipython.workshop_feed as feed  # noqa: E402
from tests.unit.ipython.fakedash import FakeDashboard  # noqa: E402

SOURCE = "x = 1  # a short cell: the extension's cost shows most"


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def shell() -> InteractiveShell:
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell(config=config)


def time_cells(sh: InteractiveShell, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        sh.run_cell(SOURCE, store_history=True, cell_id=f"cell-{i % 50}")
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=10000, help="cells per measurement")
    args = parser.parse_args()

    dashboard = FakeDashboard().start()
    home = tempfile.mkdtemp(prefix="kernel-overhead-")
    os.environ.update(WORKSHOP_EVENTS_URL=dashboard.url, JUPYTERHUB_API_TOKEN="t",
                      JUPYTERHUB_USER="alice", HOME=home,
                      JPY_SESSION_NAME=f"{home}/day1/intro.ipynb")
    with_feed = shell()
    feed.load_ipython_extension(with_feed)
    hooks: list[float] = []
    pre, post = feed.FEED.pre_run_cell, feed.FEED.post_run_cell

    # The hooks alone, timed where IPython calls them.
    def timed_pre(info):
        started = time.perf_counter()
        pre(info)
        hooks.append(time.perf_counter() - started)

    def timed_post(result):
        started = time.perf_counter()
        post(result)
        hooks[-1] += time.perf_counter() - started

    with_feed.events.unregister("pre_run_cell", pre)
    with_feed.events.unregister("post_run_cell", post)
    with_feed.events.register("pre_run_cell", timed_pre)
    with_feed.events.register("post_run_cell", timed_post)
    time_cells(with_feed, 500)  # warm up
    hooks.clear()
    time_cells(with_feed, args.cells)
    with_feed.events.unregister("pre_run_cell", timed_pre)
    with_feed.events.unregister("post_run_cell", timed_post)
    with_feed.events.register("pre_run_cell", pre)
    with_feed.events.register("post_run_cell", post)

    # Whole cells, with and without, alternating blocks (the machine's mood shared).
    without = shell()
    on, off = [], []
    block = 500
    for _ in range(max(1, args.cells // block)):
        on += time_cells(with_feed, block)
        off += time_cells(without, block)
    time.sleep(2)  # let the sender deliver what is queued
    stats = feed.FEED.sender.stats()
    dashboard.stop()

    us = 1e6
    print(f"kernel overhead of the execution feed ({args.cells} cells each; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs)")
    print(f"  hooks on the kernel's thread: median {statistics.median(hooks) * us:6.1f} us, "
          f"p99 {quantile(hooks, 0.99) * us:6.1f} us, max {max(hooks) * us:7.1f} us")
    print(f"  run_cell with the feed:       median {statistics.median(on) * us:6.1f} us, "
          f"p99 {quantile(on, 0.99) * us:6.1f} us")
    print(f"  run_cell without:             median {statistics.median(off) * us:6.1f} us, "
          f"p99 {quantile(off, 0.99) * us:6.1f} us")
    print(f"  difference per cell:          median "
          f"{(statistics.median(on) - statistics.median(off)) * us:6.1f} us, "
          f"p99 {(quantile(on, 0.99) - quantile(off, 0.99)) * us:6.1f} us")
    print(f"  sender: {stats['sent']} delivered, {stats['dropped']} dropped, "
          f"{stats['pending']} pending, {len(dashboard.posts)} posts")
    print("  goal: <= 1000 us per cell (median)")
    print(f"\n  command: .venv/bin/python benchmarks/kernel_overhead.py --cells {args.cells}")


if __name__ == "__main__":
    main()
