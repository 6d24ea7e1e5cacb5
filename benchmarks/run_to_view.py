"""From a participant's executed cell to the instructor's board, in the real stack.

Brings up its own stack (compose project `workshop-live-bench`, loopback ports 900-903,
scratch data in tmp/bench-live), with `--participants` participants. `--kernels` of them
are real: they log in, start their server and a kernel for the handed-out lesson the way
JupyterLab does (a session; each cell's id in the request), and run a lesson cell every
`--interval` seconds over their kernel's websocket; the feed extension in their kernel
reports it. The others are simulated on this machine with the kernel extension's own
sender (same batching, pacing and wire format) posting with their own real hub tokens,
to the same internal address their kernels would use.

The instructor's board is open twice in Chromium: once live (server-sent events) and
once forced to poll (no EventSource), both watching the same executions. A cell counts as
visible when the board's DOM shows it (a MutationObserver on the grid notes when a tile's
last execution changes); its time is that moment minus when the kernel finished the cell
(the record's own time: same host clock). Also: executions lost (run but not stored), and
the dashboard process's CPU (from /proc) per 1000 executions.

    .venv/bin/python benchmarks/run_to_view.py                       # 60 (10 real), 3 min
    .venv/bin/python benchmarks/run_to_view.py --kernels 20 --minutes 5

Goal (issue 14): p95 <= 0.5 s with 60 participants, nothing lost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from dashboard.lesson import source_hash  # noqa: E402
from etc.ipython.workshop_feed.sender import Sender  # noqa: E402
from tests.e2e import hubclient  # noqa: E402
from tests.e2e.browserkit import CHROMIUM_ARGS  # noqa: E402
from tests.e2e.compose_stack import Stack, local_addresses  # noqa: E402
from tests.e2e.hubclient import HubSession, within  # noqa: E402
from tests.e2e.live.kit import LESSON, LESSON_CELLS, LESSON_JSON, NotebookKernel  # noqa: E402

ADDRESSES = local_addresses(900)
LIVE = ADDRESSES.service("dashboard", "live")
INTERNAL_EVENTS = f"{ADDRESSES.dashboard_url}/services/dashboard/events"
CODE = [c for c in LESSON_CELLS if c["cell_type"] == "code"]

# Notes every change of a tile's last execution, with the page's clock.
OBSERVER = """() => {
  window.__seen = [];
  const last = {};
  const grid = document.getElementById("grid");
  const scan = () => {
    const now = Date.now();
    grid.querySelectorAll(".tile").forEach((t) => {
      const user = t.dataset.user, at = t.dataset.at;
      if (at && last[user] !== at) { last[user] = at; window.__seen.push([user, at, now]); }
    });
  };
  scan();
  new MutationObserver(scan).observe(grid, { childList: true });
}"""


def password(name: str) -> str:
    return f"{name}-bench"


def users_txt(names: list[str]) -> str:
    return "\n".join(f"{n}:{password(n)}" for n in names) + \
        f"\n[instructors]\nteacher:{password('teacher')}\n"


def login(name: str) -> HubSession:
    return hubclient.logged_in(name, password(name), ADDRESSES)


def board_page(browser, polling: bool) -> Page:
    page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    if polling:
        page.add_init_script("delete window.EventSource")
    page.goto(LIVE)
    page.fill("#username_input", "teacher")
    page.fill("#password_input", password("teacher"))
    page.click("#login_submit")
    page.wait_for_selector("#grid .tile")
    page.select_option("#lesson", LESSON)
    want = "polling every second" if polling else "live (pushed)"
    expect(page.locator("#mode")).to_have_text(want, timeout=30000)
    page.evaluate(OBSERVER)
    return page


def dashboard_cpu(stack: Stack) -> float:
    """CPU seconds (user + system) the dashboard process has used, from the host's /proc."""
    lines = stack.compose("top", "hub").stdout.splitlines()
    column = next(line.split() for line in lines if "PID" in line.split()).index("PID")
    for line in lines:
        if "-m dashboard" in line:
            pid = int(line.split()[column])
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError("no dashboard process in the stack")


class Schedule:
    """When each participant runs a cell: every `interval` s, staggered over the class."""

    def __init__(self, n: int, interval: float, minutes: float) -> None:
        self.start = time.monotonic() + 5
        self.n, self.interval = n, interval
        self.rounds = int(minutes * 60 // interval)

    def slots(self, i: int):
        for k in range(self.rounds):
            yield k, self.start + k * self.interval + i * self.interval / self.n


def run_real(session: HubSession, i: int, schedule: Schedule, ran: dict, stop) -> None:
    kernel = NotebookKernel(session, LESSON)
    try:
        for k, when in schedule.slots(i):
            if stop.is_set():
                return
            time.sleep(max(0.0, when - time.monotonic()))
            kernel.run_cell(CODE[k % len(CODE)])
            ran[session.name] = ran.get(session.name, 0) + 1
    finally:
        kernel.close()


def run_simulated(sender: Sender, name: str, i: int, schedule: Schedule, ran: dict,
                  stop) -> None:
    for k, when in schedule.slots(i):
        if stop.is_set():
            return
        time.sleep(max(0.0, when - time.monotonic()))
        cell = CODE[k % len(CODE)]
        sender.add({"path": LESSON, "cell": cell["id"], "count": k + 1, "ok": True,
                    "error": None, "duration": 0.001, "at": datetime.now(UTC).isoformat(),
                    "head": cell["source"].split("\n")[0],
                    "source_hash": source_hash(cell["source"])})
        ran[name] = ran.get(name, 0) + 1


STORED_DELAYS = """
import json, sqlite3
from datetime import datetime
db = sqlite3.connect("file:/srv/hub/state/dashboard/feed.sqlite?mode=ro", uri=True)
print(json.dumps([(datetime.fromisoformat(r) - datetime.fromisoformat(a)).total_seconds()
                  for a, r in db.execute("SELECT at, received FROM executions")]))
"""


def stored_delays(stack: Stack) -> list[float]:
    """For each execution: from the kernel's record to the dashboard's receipt (the part
    of the way before the board: the kernel's sender, the proxy-free post, the token
    check, validation, SQLite)."""
    return json.loads(stack.exec("python3", "-c", STORED_DELAYS).stdout)


def quantiles(values: list[float]) -> str:
    if not values:
        return "nothing seen"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return (f"p50 {statistics.median(values):.3f} s, p95 {p95:.3f} s, "
            f"max {values[-1]:.3f} s ({len(values)} seen)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=60)
    parser.add_argument("--kernels", type=int, default=10, help="of them with real kernels")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    names = [f"p{n:02d}" for n in range(1, args.participants + 1)]
    stack = Stack(ROOT / "tmp" / "bench-live", project="workshop-live-bench",
                  port=ADDRESSES.port)
    stack.down()
    stack.prepare(users_txt(names), {})
    (stack.materials / "day1").mkdir()
    (stack.materials / LESSON).write_text(LESSON_JSON)
    stop = threading.Event()
    try:
        print(f"stack up in {stack.up():.0f} s", flush=True)
        teacher = login("teacher")
        within(60, lambda: "instructors" in teacher.user_model().get("groups", []),
               "teacher is an instructor")
        real = names[:args.kernels]
        sessions = {n: login(n) for n in names}
        for n in real:
            sessions[n].spawn()
            sessions[n].open_lab()
        print(f"{len(real)} servers running", flush=True)
        senders = {n: Sender(INTERNAL_EVENTS, sessions[n].new_token(), n)
                   for n in names[args.kernels:]}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=CHROMIUM_ARGS)
            pages = {"pushed (SSE)": board_page(browser, polling=False),
                     "polling (1 s)": board_page(browser, polling=True)}
            schedule = Schedule(args.participants, args.interval, args.minutes)
            ran: dict[str, int] = {}
            cpu_before = dashboard_cpu(stack)
            threads = [threading.Thread(target=run_real, args=(sessions[n], i, schedule, ran,
                                                               stop))
                       for i, n in enumerate(real)]
            threads += [threading.Thread(target=run_simulated, args=(
                senders[n], n, i, schedule, ran, stop))
                for i, n in enumerate(names) if n in senders]
            for t in threads:
                t.start()
            print(f"running: {schedule.rounds} cells each, every {args.interval:g} s",
                  flush=True)
            for t in threads:
                t.join()
            time.sleep(3)  # the last ones reach the board
            cpu_used = dashboard_cpu(stack) - cpu_before
            seen = {label: page.evaluate("window.__seen") for label, page in pages.items()}
            browser.close()
        stats = requests_stats()
        total = sum(ran.values())
        print(f"\nrun -> visible on the board: {args.participants} participants "
              f"({len(real)} real kernels, {len(senders)} simulated with their own tokens), "
              f"a cell every {args.interval:g} s each for {args.minutes:g} min: "
              f"{total} executions")
        for label, entries in seen.items():
            latency = [ms / 1000 - datetime.fromisoformat(at).timestamp()
                       for _, at, ms in entries]
            print(f"  {label:14} {quantiles(latency)}")
        print(f"  {'of which stored':14} {quantiles(stored_delays(stack))}")
        stored = stats["executions"]
        dropped = sum(stats["dropped"].values())
        print(f"  lost: {total - stored} (run {total}, stored {stored}); dropped by "
              f"kernels' buffers: {dropped}; simulated senders' failures: "
              f"{sum(s.failures for s in senders.values())}")
        print(f"  dashboard CPU: {cpu_used:.2f} s for {stored} executions = "
              f"{cpu_used / max(stored, 1) * 1000:.2f} s per 1000 (incl. two open boards)")
        print(f"\n  command: .venv/bin/python benchmarks/run_to_view.py --participants "
              f"{args.participants} --kernels {args.kernels} --interval {args.interval:g} "
              f"--minutes {args.minutes:g}")
    finally:
        stop.set()
        (stack.workdir / "hub.log").write_text(stack.logs())
        if not args.keep:
            stack.down()


def requests_stats() -> dict:
    """The dashboard's own counts (an instructor's token)."""
    token = login("teacher").new_token()
    r = requests.get(f"{LIVE}/api/stats", headers={"Authorization": f"token {token}"},
                     timeout=30)
    r.raise_for_status()
    return r.json()


if __name__ == "__main__":
    main()
