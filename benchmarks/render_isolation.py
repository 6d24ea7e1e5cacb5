"""One participant's monster notebooks against everybody else's save-to-view latency.

A synthetic class in a temporary home root: 30 participants with the normal notebook of
benchmarks/synthetic_class.py (tables, plots, tracebacks), and mallory with two monsters:
100 000 minimal code cells (5 MiB) and one cell printing a 20 MiB line. In each round
mallory saves both monsters, then the 30 others save within `--spread` seconds (evenly
spaced, random order). A save is the file written as Jupyter writes it, then `enqueue`; it
is done when the listener reports that participant's view written. Reported: the others'
save-to-view latency (p50/p95/max), the same class without mallory as the baseline, what
mallory's notebooks became, and the peak memory of the dashboard and its render processes.

Everything runs in this process (RenderWorker + Renderer + FileSystemSource, render
processes forked as in the service); no hub, no HTTP.

    .venv/bin/python benchmarks/render_isolation.py
    .venv/bin/python benchmarks/render_isolation.py --rounds 5 --others 30
    # the same class against another checkout's dashboard (e.g. before this change):
    .venv/bin/python benchmarks/render_isolation.py --services ../main/services --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from base64 import b64encode
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--others", type=int, default=30, help="participants besides mallory")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of saves per scenario")
    parser.add_argument("--spread", type=float, default=1.0,
                        help="seconds over which the others save in a round")
    parser.add_argument("--cells", type=int, default=100_000, help="cells of mallory's first")
    parser.add_argument("--output-mib", type=int, default=20, help="MiB of mallory's output")
    parser.add_argument("--services", type=Path, default=HERE.parent / "services",
                        help="the services folder whose dashboard is measured")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per round at most")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
sys.path[:0] = [str((ARGS.services if ARGS else HERE.parent / "services").resolve()),
                str(HERE)]

from synthetic_class import PATH, make_notebook, percentile, plot_png, save, write_text  # noqa: E402

from dashboard.render import Renderer  # noqa: E402
from dashboard.worker import RenderWorker  # noqa: E402

try:
    from dashboard.sources import FileSystemSource
except ImportError:  # a checkout from before sources.py
    from dashboard.worker import FileSystemSource  # type: ignore[attr-defined,no-redef]

CELLS_PATH, OUTPUT_PATH = "monster/cells.ipynb", "monster/output.ipynb"


def monster_cells(n: int) -> str:
    cell = ('{"cell_type": "code", "metadata": {}, "execution_count": null, "outputs": [], '
            '"source": ""}')
    return ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ['
            + ",".join([cell] * n) + "]}")


def monster_output(mib: int) -> str:
    line = "0123456789" * (mib * 1024 * 1024 // 10)
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "print(line)",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": line + "\n"}]}]})


class Views:
    """Listener: when each (user, path) last had its view written."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.at: dict[tuple[str, str], float] = {}

    def __call__(self, change: object) -> None:
        if getattr(change, "kind", None) == "view" and getattr(change, "user", None):
            with self.cond:
                self.at[(change.user, change.path)] = time.perf_counter()  # type: ignore
                self.cond.notify_all()

    def wait(self, keys: list[tuple[str, str]], after: dict, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(
                lambda: all(self.at.get(k, 0) > after[k] for k in keys), timeout)


def rss_peak_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(args: argparse.Namespace, with_mallory: bool, images: list[str]) -> dict:
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="render_isolation-"))
    home, out = root / "home", root / "out"
    others = [f"u{i:03d}" for i in range(args.others)]
    for user in others:
        save(home, user, make_notebook(int(user[1:]), images))
    views = Views()
    worker = RenderWorker(Renderer(out), FileSystemSource(home), listeners=[views])
    worker.start()
    assert worker.wait_idle(args.timeout), "the class did not render at the start"
    cells, output = monster_cells(args.cells), monster_output(args.output_mib)
    latencies: list[float] = []
    mallory: dict[str, float] = {}
    try:
        for number in range(args.rounds):
            saved: dict[tuple[str, str], float] = {}
            if with_mallory:
                for path, text in ((CELLS_PATH, cells), (OUTPUT_PATH, output)):
                    saved[("mallory", path)] = time.perf_counter()
                    write_text(home / "mallory" / path, text)
                    worker.enqueue("mallory", path)
            order = rng.sample(others, len(others))
            start = time.perf_counter()
            for k, user in enumerate(order):
                pause = start + k * args.spread / len(order) - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                saved[(user, PATH)] = time.perf_counter()
                save(home, user, make_notebook(int(user[1:]), images, number + 1))
                worker.enqueue(user, PATH)
            assert views.wait(list(saved), saved, args.timeout), "round did not finish"
            latencies += [views.at[(u, PATH)] - saved[(u, PATH)] for u in others]
            for key in saved:
                if key[0] == "mallory":
                    mallory[key[1]] = max(mallory.get(key[1], 0), views.at[key] - saved[key])
            assert worker.wait_idle(args.timeout)
        renderer = worker.renderer
        outcome = {path: (renderer.status(path) or {}).get("participants", {})
                   .get("mallory", {}).get("problem") for path in mallory}
        view_sizes = {path: renderer.view_file("mallory", path).stat().st_size
                      for path in mallory}
        pool = getattr(worker, "pool", None)
        children = [rss_peak_mib(pid) for pid in (pool.pids() if pool else [])]
        summary_size = renderer.summary_file(PATH).stat().st_size
    finally:
        worker.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {"lat": latencies, "mallory": mallory, "outcome": outcome, "sizes": view_sizes,
            "children": children, "summary": summary_size}


def main(args: argparse.Namespace) -> None:
    images = [b64encode(plot_png(seed)).decode() for seed in range(4)]
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; dashboard from "
          f"{args.services}; {args.others} others, {args.rounds} rounds, saves spread over "
          f"{args.spread:g} s; mallory: {args.cells} cells, a {args.output_mib} MiB output",
          flush=True)
    results = {}
    for name, with_mallory in (("without mallory", False), ("with mallory", True)):
        started = time.perf_counter()
        results[name] = run(args, with_mallory, images)
        print(f"{name}: done in {time.perf_counter() - started:.1f} s", flush=True)
    print("\nothers' save-to-view latency (s)  |   p50  |   p95  |   max  | samples")
    print("----------------------------------|--------|--------|--------|--------")
    for name, r in results.items():
        lat = r["lat"]
        print(f"{name:<33} | {percentile(lat, 50):6.2f} | {percentile(lat, 95):6.2f} | "
              f"{max(lat):6.2f} | {len(lat):>6}")
    r = results["with mallory"]
    for path, seconds in r["mallory"].items():
        print(f"mallory's {path}: shown after {seconds:.2f} s as "
              f"{r['outcome'][path] or 'a rendered view'!r} ({r['sizes'][path] // 1024} KiB)")
    print(f"summary page of {PATH} with {args.others} participants: "
          f"{r['summary'] // 1024} KiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = ", ".join(f"{c:.0f}" for c in r["children"] if c) or "none (in-process)"
    print(f"peak RSS: this process {peak:.0f} MiB; render processes (last) {children} MiB")
    print("command: " + " ".join([os.path.relpath(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main(ARGS)
