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
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import nbconvert

from dashboard import ipytail
from dashboard.render import Renderer, atomic_write, exporter, lab_css
from dashboard.sources import FileSystemSource
from dashboard.worker import Change, RenderWorker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_class import PATH, make_notebook, percentile, plot_png, save


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


def check_markers(renderer: Renderer, users: list[str], save_no: dict[str, int]) -> None:
    summary = renderer.summary_file(PATH).read_text()
    for user in users:
        marker = f"save-marker {users_index(user)}-{save_no[user]}"
        view = renderer.view_file(user, PATH).read_text()
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
        check_markers(worker.renderer, [user], save_no)
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
    check_markers(worker.renderer, users, save_no)
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
