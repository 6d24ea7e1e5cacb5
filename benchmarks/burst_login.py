"""9:00, everybody logs in: N participants log in and start their servers at once.

Each participant is a thread doing what a browser does, over real HTTP against the stack
(the hub at localhost:<port>, each server on its own subdomain): the login form, the
hub's Start button (GET /hub/spawn/<name>, then the spawn-pending page's event stream of
the server's progress until it says ready), then the first request to their own
JupyterLab (through the OAuth redirects) answering. Reported: the time until every
server answered, first/p50/p95 per participant, failures, and where each participant's
time went (login, start, JupyterLab).

Then the first cell: with every server up, all N participants start a kernel and run one
cell at the same moment, as a class does when told "run the first cell" (kernel start +
websocket + execute, until the reply). Reported the same way.

    .venv/bin/python benchmarks/burst_login.py                 # N = 10, 30, 60
    .venv/bin/python benchmarks/burst_login.py --sizes 3       # the smoke run the tests use
    .venv/bin/python benchmarks/burst_login.py --port 860 --project workshop-fork-bench \
        --spawner fork --sizes 10 30 60
    .venv/bin/python benchmarks/burst_login.py --spawner containers --sizes 10 30

It brings up its own stack (compose project `workshop-bench` on ports 920-923 unless told
otherwise, a throwaway users.txt under tmp/) and takes it down at the end; between sizes
every server is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from benchmarks.benchstack import (
    add_stack_options,
    bench_stack,
    stack_options,
    wait_for_accounts,
)
from benchmarks.hubprofile import HubProfile
from tests.e2e.hubclient import HubSession
from workshop.addresses import Addresses

FIRST_CELL = "import sys; print(sys.version_info[0] + 1)"


@dataclass
class Burst:
    n: int
    total: float = 0.0
    ready: list[float] = field(default_factory=list)  # per participant, seconds from go
    failures: list[str] = field(default_factory=list)
    # The logged-in sessions of those who got through, for what comes next.
    sessions: list[HubSession] = field(default_factory=list, repr=False)
    phases: dict[str, list[float]] = field(default_factory=dict)  # seconds, per phase

    def phase_line(self) -> str:
        parts = []
        for name, took in self.phases.items():
            ordered = sorted(took)
            p50 = ordered[len(ordered) // 2]
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            parts.append(f"{name} p50 {p50:.1f} s / p95 {p95:.1f} s")
        return "; ".join(parts)

    def percentile(self, q: float) -> float:
        if not self.ready:
            return float("nan")
        ordered = sorted(self.ready)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def row(self) -> str:
        return (f"| {self.n:>3} | {self.total:7.1f} | {self.percentile(0):6.1f} | "
                f"{self.percentile(0.5):6.1f} | {self.percentile(0.95):6.1f} | "
                f"{len(self.failures):>8} |")


HEADER = ("| N   | all ready s | first s | p50 s | p95 s | failures |\n"
          "|-----|---------|--------|--------|--------|----------|")


def participants(n: int, prefix: str = "bench") -> list[tuple[str, str]]:
    return [(f"{prefix}{i:03d}", f"pw-{prefix}{i:03d}") for i in range(1, n + 1)]


def start_like_the_button(session: HubSession, timeout: float = 300) -> None:
    """What the hub's Start button does: GET /hub/spawn/<name> (which starts the server
    and sends the browser to the spawn-pending page), then that page's event stream of
    the server's progress, until it says ready. No polling: a browser does not poll."""
    r = session.http.get(f"{session.base}/hub/spawn/{session.name}", allow_redirects=False,
                         timeout=60)
    assert r.status_code in (302, 303), f"spawn: {r.status_code} {r.text[:200]}"
    if f"/hub/spawn-pending/{session.name}" not in r.headers.get("Location", ""):
        return  # ready already: sent straight to the server
    deadline = time.monotonic() + timeout
    with session.hub_api("GET", f"/users/{session.name}/server/progress",
                         stream=True) as events:
        events.raise_for_status()
        for line in events.iter_lines():
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                if event.get("ready"):
                    return
                if event.get("failed"):
                    raise AssertionError(f"start failed: {event.get('message')}")
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"server of {session.name} not ready after {timeout}s")


T = TypeVar("T")


def all_at_once(work: Callable[[T], None], items: Sequence[T], name: Callable[[T], str],
                timeout: float) -> tuple[float, list[str]]:
    """`work(item)` for every item, each in a thread of its own, all released at the same
    moment; the seconds from that moment until every thread ended (each waited for at
    most `timeout`), and the failures, one line each: a failure is a result here, not a
    crash."""
    go = threading.Barrier(len(items) + 1)
    failures: list[str] = []

    def one(item: T) -> None:
        go.wait()
        try:
            work(item)
        except Exception as e:
            failures.append(f"{name(item)}: {type(e).__name__}: {e}"[:300])

    threads = [threading.Thread(target=one, args=(item,), daemon=True) for item in items]
    for t in threads:
        t.start()
    go.wait()
    started = time.monotonic()
    for t in threads:
        t.join(timeout)
    return time.monotonic() - started, failures


def burst(people: list[tuple[str, str]], addresses: Addresses | None = None,
          timeout: float = 300) -> Burst:
    """Log everyone in and start their servers at the same moment; measure."""
    result = Burst(len(people))
    lock = threading.Lock()

    def one(person: tuple[HubSession, str]) -> None:
        session, password = person
        started = time.monotonic()
        session.login(password)
        logged_in = time.monotonic()
        start_like_the_button(session, timeout)
        ready = time.monotonic()
        r = session.open_lab()
        assert r.status_code == 200 and "JupyterLab" in r.text
        done = time.monotonic()
        with lock:
            result.ready.append(done - started)
            result.sessions.append(session)
            for phase, took in (("login", logged_in - started),
                                ("start", ready - logged_in), ("lab", done - ready)):
                result.phases.setdefault(phase, []).append(took)

    sessions = [(HubSession(name, addresses), password) for name, password in people]
    result.total, result.failures = all_at_once(one, sessions, lambda p: p[0].name,
                                                timeout + 120)
    return result


def first_cell(sessions: list[HubSession], code: str = FIRST_CELL,
               timeout: float = 120) -> Burst:
    """Every session starts a kernel and runs `code` at the same moment; measure."""
    result = Burst(len(sessions))

    def one(session: HubSession) -> None:
        started = time.monotonic()
        kernel = session.start_kernel()
        try:
            out = kernel.execute(code, timeout=timeout)
            assert not out["error"] and out["stdout"].strip(), out
            result.ready.append(time.monotonic() - started)
        finally:
            kernel.close()

    result.total, result.failures = all_at_once(one, sessions, lambda s: s.name,
                                                timeout + 60)
    return result


def stop_all(people: list[tuple[str, str]], addresses: Addresses | None = None) -> None:
    """Stop every server of `people` (each with their own session) and wait until gone."""
    for name, password in people:
        session = HubSession(name, addresses)
        session.login(password)
        session.hub_api("DELETE", f"/users/{name}/server")
        deadline = time.monotonic() + 120
        while session.user_model().get("servers") and time.monotonic() < deadline:
            time.sleep(0.5)


def users_txt(people: list[tuple[str, str]], hashed: bool = False) -> str:
    if not hashed:
        return "".join(f"{n}:{p}\n" for n, p in people)
    import bcrypt

    return "".join(f"{n}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(12)).decode()}\n"
                   for n, p in people)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 60])
    parser.add_argument("--cell", default=FIRST_CELL, help="the first cell everyone runs")
    parser.add_argument("--bcrypt", action="store_true",
                        help="bcrypt hashes (cost 12) in users.txt instead of plain passwords")
    parser.add_argument("--profile-hub", metavar="PY_SPY",
                        help="sample the hub with this py-spy during each burst "
                        "(benchmarks/hubprofile.py)")
    add_stack_options(parser)
    args = parser.parse_args()
    people = participants(max(args.sizes))
    stack = bench_stack("bench", args.port, args.project, args.spawner,
                        args.env)
    stack.down()
    stack.prepare(users_txt(people, args.bcrypt), {"welcome.md": "# hi\n"})
    print(f"starting the stack with {len(people)} participants ...", flush=True)
    print(f"stack healthy after {stack.up():.1f}s", flush=True)
    print(f"accounts made after {wait_for_accounts(stack, [n for n, _ in people]):.1f}s more",
          flush=True)
    results, cells, profiles = [], [], []
    try:
        for n in args.sizes:
            profile = (HubProfile(args.profile_hub, stack, stack.workdir.parent /
                                  f"hub-profile-{args.project}-{n}.txt")
                       if args.profile_hub else contextlib.nullcontext())
            with profile:
                result = burst(people[:n])
            results.append(result)
            if isinstance(profile, HubProfile):
                profiles.append(f"N={n}: {profile.summary()}")
            print(f"N={n}: all ready in {result.total:.1f}s, "
                  f"{len(result.failures)} failures; {result.phase_line()}", flush=True)
            for failure in result.failures[:5]:
                print("   ", failure)
            cell = first_cell(result.sessions, args.cell)
            cell.n = n
            cells.append(cell)
            print(f"N={n}: first cell everywhere in {cell.total:.1f}s, "
                  f"{len(cell.failures)} failures", flush=True)
            for failure in cell.failures[:5]:
                print("   ", failure)
            stop_all(people[:n])
    finally:
        (stack.workdir / "hub.log").write_text(stack.logs())
        stack.down()
    print(f"hub log: {stack.workdir / 'hub.log'}")
    print("\nlogin + server start, until JupyterLab answers")
    print(HEADER)
    for r in results:
        print(r.row())
    for profile_text in profiles:
        print(f"\n{profile_text}")
    print(f"\nfirst cell, everyone at once (kernel start + execute {args.cell!r})")
    print(HEADER.replace("all ready", "all done "))
    for r in cells:
        print(r.row())
    cell = "" if args.cell == FIRST_CELL else f" --cell {args.cell!r}"
    cell += " --bcrypt" if args.bcrypt else ""
    print(f"\nreproduce: .venv/bin/python benchmarks/burst_login.py --sizes "
          f"{' '.join(map(str, args.sizes))} {stack_options(args)}{cell}".rstrip())


if __name__ == "__main__":
    main()
