"""Save-to-view latency of the dashboard's renderer, against the old design.

A synthetic class: N participants' copies of one notebook (markdown, stream output, HTML
tables, PNG plots, tracebacks) in a temporary home root. For each N it measures, in one run:

* new: the dashboard's RenderWorker (in-process nbconvert, one exporter, cached summary
  fragments, coalescing queue). A "save" is the notebook written the way Jupyter writes
  it (temporary file + rename) and `enqueue(user, path)`; it is done when the listener
  reports that participant's view *and* then the notebook's summary written to disk.
  Single saves one after another (p50/p95), then a burst: all N participants save at once.
* ref: what the old design did on every save: one `jupyter nbconvert --to html`
  subprocess for the saved notebook, then a full summary rebuild that re-reads and
  re-renders all N notebooks (this project's tail code and exporter, so the reference is,
  if anything, faster than the old one). Its burst is N such saves in a row; above
  --ref-burst-max participants it is estimated as N x the mean single save (marked "est").

    .venv/bin/python benchmarks/save_to_view.py                  # N = 10, 30, 60
    .venv/bin/python benchmarks/save_to_view.py --sizes 60 --saves 40 --ref-saves 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from base64 import b64encode
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import nbconvert

from dashboard import ipytail
from dashboard.render import Renderer, atomic_write, exporter, lab_css
from dashboard.worker import Change, FileSystemSource, RenderWorker

PATH = "day1/intro.ipynb"
RED, GREEN, RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[0m"


# -- the synthetic class ----------------------------------------------------------------
def plot_png(seed: int, width: int = 480, height: int = 320) -> bytes:
    """A plot-like PNG (curve, shaded area with noise, axes), like matplotlib's output."""
    rng = random.Random(seed)
    phase, freq = rng.uniform(0, 6.3), rng.uniform(25, 60)
    raw = bytearray()
    for y in range(height):
        raw.append(0)
        for x in range(width):
            curve = height / 2 - height / 3 * math.sin(x / freq + phase)
            if x in (40, 41) or y in (height - 30, height - 29):
                px = (0, 0, 0)
            elif abs(y - curve) < 1.8:
                px = (31, 119, 180)
            elif y > curve and x > 41 and y < height - 30:
                n = rng.randint(-6, 6)
                px = (174 + n, 199 + n, 232 + n)
            else:
                px = (255, 255, 255)
            raw.extend(px)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def table_html(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    body = "".join(
        f"    <tr>\n      <th>{i}</th>\n" + "".join(
            f"      <td>{rng.uniform(0, 100):.3f}</td>\n" for _ in range(4)) + "    </tr>\n"
        for i in range(rows))
    return ("<div>\n<style scoped>\n    .dataframe tbody tr th:only-of-type {\n"
            "        vertical-align: middle;\n    }\n</style>\n"
            '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">'
            "\n      <th></th>\n      <th>a</th>\n      <th>b</th>\n      <th>c</th>\n"
            f"      <th>d</th>\n    </tr>\n  </thead>\n  <tbody>\n{body}  </tbody>\n"
            "</table>\n</div>")


def traceback(depth: int) -> list[str]:
    frames = [f"{GREEN}File ~/day1/helpers.py:{10 + i}{RESET}, in step_{i}(x)\n"
              f"     {9 + i} def step_{i}(x):\n---> {10 + i}     return step_{i + 1}(x) / x\n"
              for i in range(depth)]
    return [f"{RED}-----------------------------------------------------------------{RESET}",
            f"{RED}ZeroDivisionError{RESET}{' ' * 25}Traceback (most recent call last)",
            *frames, f"{RED}ZeroDivisionError{RESET}: division by zero"]


def make_notebook(user_index: int, images: list[str], save: int = 0) -> dict:
    rng = random.Random(user_index)
    count = iter(range(1, 100))

    def code(src: str, *outputs: dict) -> dict:
        return {"cell_type": "code", "execution_count": next(count), "metadata": {},
                "source": src, "outputs": list(outputs)}

    def md(src: str) -> dict:
        return {"cell_type": "markdown", "metadata": {}, "source": src}

    def out(text: str, name: str = "stdout") -> dict:
        return {"output_type": "stream", "name": name, "text": text}

    def data(kind: str, bundle: dict) -> dict:
        o = {"output_type": kind, "data": bundle, "metadata": {}}
        return {**o, "execution_count": 0} if kind == "execute_result" else o

    lines = "".join(f"epoch {i}: loss={1 / (i + 1):.4f}\n" for i in range(rng.randint(40, 80)))
    stuck = user_index % 3 == 0  # a third of the class ends on a traceback
    cells = [
        md("# Day 1: a first look at the data\n\nRun each cell with **Shift-Enter**."),
        code("import math\nimport random\nfrom helpers import load, step_0"),
        code("for i in range(12):\n    print(i, i * i)",
             out("".join(f"{i} {i * i}\n" for i in range(12)))),
        md("## The table\nA `DataFrame` renders as HTML."),
        code("df = load('scores.csv')\ndf.head(12)", data("execute_result", {
            "text/html": table_html(12, user_index), "text/plain": "<DataFrame 12x4>"})),
        code("df.describe()", data("execute_result", {
            "text/html": table_html(8, user_index + 1000), "text/plain": "<DataFrame 8x4>"})),
        md("## A plot"),
        code("df.plot()", data("display_data", {
            "image/png": images[user_index % len(images)],
            "text/plain": "<Figure size 640x480 with 1 Axes>"})),
        code("train(model, epochs=80)", out(lines)),
        md("## Exercise 1\nFix `step_0` so that it never divides by zero."),
        code("import warnings\nwarnings.warn('deprecated')",
             out("<ipython-input-9>:2: UserWarning: deprecated\n", "stderr")),
        *[code(f"x{k} = {k} * 3\nx{k}", data("execute_result", {"text/plain": str(k * 3)}))
          for k in range(5)],
        code("df.plot(kind='scatter', x='a', y='b')", data("display_data", {
            "image/png": images[(user_index + 1) % len(images)],
            "text/plain": "<Figure size 640x480 with 1 Axes>"})),
        md("## Exercise 2"),
        code("step_0(0)", {"output_type": "error", "ename": "ZeroDivisionError",
                           "evalue": "division by zero", "traceback": traceback(4)}),
        code(f"print('save {save}')", out(f"save-marker {user_index}-{save}\n")),
    ]
    if stuck:  # the traceback cell was run last
        cells[-2], cells[-1] = cells[-1], cells[-2]
        cells[-1]["execution_count"], cells[-2]["execution_count"] = 99, 98
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"
        for o in c.get("outputs", []):
            if o["output_type"] == "execute_result":
                o["execution_count"] = c["execution_count"]
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"}}}


def save(home: Path, user: str, nb: dict) -> None:
    """Write the way Jupyter's contents manager does: temporary file, then rename."""
    atomic_write(home / user / PATH, json.dumps(nb, indent=1))


# -- measuring --------------------------------------------------------------------------
class Waiter:
    """Listener: a save of `user` is done when their view and then the summary are written."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.viewed: dict[str, float] = {}
        self.summary_after: dict[str, float] = {}

    def __call__(self, change: Change) -> None:
        now = time.perf_counter()
        with self.lock:
            if change.kind == "view" and change.user:
                self.viewed[change.user] = now
            elif change.kind == "summary":
                for user in self.viewed:
                    self.summary_after.setdefault(user, now)
            self.lock.notify_all()

    def reset(self) -> None:
        with self.lock:
            self.viewed.clear()
            self.summary_after.clear()

    def wait(self, users: list[str], timeout: float = 120) -> float:
        with self.lock:
            assert self.lock.wait_for(lambda: all(u in self.summary_after for u in users),
                                      timeout), "render did not finish in time"
            return max(self.summary_after[u] for u in users)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def check_markers(out: Path, users: list[str], save_no: dict[str, int]) -> None:
    summary = (out / "summary" / f"{PATH}.html").read_text()
    for user in users:
        marker = f"save-marker {users_index(user)}-{save_no[user]}"
        view = (out / "views" / user / f"{PATH}.html").read_text()
        assert marker in view and marker in summary, f"{user}'s save is not on the pages"


def users_index(user: str) -> int:
    return int(user[1:])


def run_new(home: Path, out: Path, users: list[str], images: list[str], saves: int,
            rng: random.Random) -> dict:
    waiter = Waiter()
    worker = RenderWorker(Renderer(out), FileSystemSource(home), listeners=[waiter])
    started = time.perf_counter()
    worker.start()  # catch-up renders the whole class from nothing
    assert worker.wait_idle(600)
    cold = time.perf_counter() - started
    save_no = dict.fromkeys(users, 0)
    latencies = []
    for k in range(saves):
        user = rng.choice(users)
        save_no[user] = k + 1
        nb = make_notebook(users_index(user), images, save_no[user])
        waiter.reset()
        t0 = time.perf_counter()
        save(home, user, nb)
        worker.enqueue(user, PATH)
        latencies.append(waiter.wait([user]) - t0)
        assert worker.wait_idle(60)
        check_markers(out, [user], save_no)
    waiter.reset()
    burst_nbs = {}
    for u in users:
        save_no[u] += 1000
        burst_nbs[u] = make_notebook(users_index(u), images, save_no[u])
    t0 = time.perf_counter()
    for u in users:
        save(home, u, burst_nbs[u])
        worker.enqueue(u, PATH)
    burst = waiter.wait(users) - t0
    assert worker.wait_idle(60)
    check_markers(out, users, save_no)
    stats = worker.stats()
    worker.stop()
    return {"cold": cold, "lat": latencies, "burst": burst, "stats": stats}


def reference_summary(home: Path, out: Path, users: list[str]) -> None:
    """The old design's summary: re-read and re-render every participant's notebook."""
    parts = []
    for user in users:
        nb = ipytail.load_notebook((home / user / PATH).read_bytes())
        html, _ = exporter().from_notebook_node(ipytail.tail(nb))
        parts.append(f"<h2>{user}</h2>\n{html}")
    page = f"<!DOCTYPE html><html><head>{lab_css()}</head><body>{''.join(parts)}</body></html>"
    atomic_write(out / "summary" / f"{PATH}.html", page)


def reference_save(home: Path, out: Path, users: list[str], user: str, jupyter: str) -> None:
    subprocess.run([jupyter, "nbconvert", "--to", "html", "--log-level", "ERROR",
                    "--output-dir", str(out / "views" / user / "day1"),
                    str(home / user / PATH)], check=True)
    reference_summary(home, out, users)


def run_reference(home: Path, out: Path, users: list[str], images: list[str], saves: int,
                  burst_max: int, rng: random.Random) -> dict:
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    latencies = []
    for k in range(saves):
        user = rng.choice(users)
        nb = make_notebook(users_index(user), images, 5000 + k)
        t0 = time.perf_counter()
        save(home, user, nb)
        reference_save(home, out, users, user, jupyter)
        latencies.append(time.perf_counter() - t0)
        view = (out / "views" / user / "day1" / "intro.html").read_text()
        assert f"save-marker {users_index(user)}-{5000 + k}" in view
    if len(users) <= burst_max:
        t0 = time.perf_counter()
        for u in users:
            save(home, u, make_notebook(users_index(u), images, 9000))
            reference_save(home, out, users, u, jupyter)
        burst, estimated = time.perf_counter() - t0, False
    else:
        burst, estimated = len(users) * mean(latencies), True
    return {"lat": latencies, "burst": burst, "estimated": estimated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,30,60", help="class sizes N (default 10,30,60)")
    parser.add_argument("--saves", type=int, default=20, help="single saves per N, new design")
    parser.add_argument("--ref-saves", type=int, default=3, help="single saves per N, reference")
    parser.add_argument("--ref-burst-max", type=int, default=10,
                        help="run the reference burst in full up to this N, estimate above")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)
    images = [b64encode(plot_png(seed)).decode() for seed in range(4)]
    sample = json.dumps(make_notebook(0, images), indent=1)
    print(f"python {platform.python_version()}, nbconvert {nbconvert.__version__}, "
          f"{os.cpu_count()} CPUs; notebook {len(sample) // 1024} KiB, "
          f"{len(make_notebook(0, images)['cells'])} cells, "
          f"PNG {len(images[0]) * 3 // 4 // 1024} KiB")
    rows = []
    root = Path(tempfile.mkdtemp(prefix="save_to_view-"))
    try:
        for n in sizes:
            users = [f"u{i:03d}" for i in range(n)]
            home = root / f"n{n}" / "home"
            for u in users:
                save(home, u, make_notebook(users_index(u), images))
            new = run_new(home, root / f"n{n}" / "new", users, images, args.saves, rng)
            ref = run_reference(home, root / f"n{n}" / "ref", users, images, args.ref_saves,
                                args.ref_burst_max, rng)
            rows.append((n, new, ref))
            print(f"N={n}: done ({new['stats']['renders']} renders, "
                  f"{new['stats']['summaries']} summaries)", flush=True)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    head = ("  N | new p50 | new p95 | new burst (saves/s) | cold start | ref p50 | ref p95 |"
            " ref burst (saves/s)  | speed-up p50 | speed-up burst")
    print("\n" + head + "\n" + "-" * len(head))
    for n, new, ref in rows:
        new_tp, ref_tp = n / new["burst"], n / ref["burst"]
        est = " est" if ref["estimated"] else "    "
        print(f"{n:3d} | {percentile(new['lat'], 50):6.3f}s | {percentile(new['lat'], 95):6.3f}s |"
              f" {n:3d} in {new['burst']:5.2f}s = {new_tp:5.1f} | {new['cold']:8.2f}s  |"
              f" {percentile(ref['lat'], 50):6.2f}s | {percentile(ref['lat'], 95):6.2f}s |"
              f" {n:3d} in {ref['burst']:6.1f}s{est} = {ref_tp:4.2f} |"
              f" {percentile(ref['lat'], 50) / percentile(new['lat'], 50):11.0f}x |"
              f" {new_tp / ref_tp:12.0f}x")
    print(f"\nsampled: {args.saves} single saves per N (new), {args.ref_saves} (reference; "
          f"its p95 is the max of those); reference burst run in full for N <= "
          f"{args.ref_burst_max}, else N x mean single save (est).")
    goal_n = max(sizes)
    worst = next(new for n, new, _ in rows if n == goal_n)
    print(f"goal p95 <= 0.5 s at N={goal_n}: {percentile(worst['lat'], 95):.3f} s")
    print("command: " + " ".join([os.path.relpath(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main()
