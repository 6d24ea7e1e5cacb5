"""A flood of wrong passwords: does the hub's event loop keep running for everybody else?

In one process, on a real asyncio event loop (JupyterHub runs tornado on asyncio), the
real `UsersFileAuthenticator` checks logins against a temporary users.txt of bcrypt
(cost 12) accounts while wrong-password attempts arrive at `--rate` per second for
`--seconds`, half of them for listed names, half for unknown ones. Meanwhile:

- a probe sleeps 10 ms again and again and records how late it wakes up: the event-loop
  lag every other request of the hub (pages, API, proxy) would wait on top of its own work;
- once a second a participant logs in with the right password (does a real login get
  through, and how long does it take?).

Modes: `pool` is the authenticator as it is (checks in a small thread pool, bounded queue,
equal time for unknown names); `inline` is the old behaviour (bcrypt on the event loop),
for comparison. Also printed: whether the `bcrypt` package releases the GIL (two checks
in two threads against one check alone).

    .venv/bin/python benchmarks/login_flood.py                      # both modes, 20/s, 10 s
    .venv/bin/python benchmarks/login_flood.py --modes pool --threads 1 --max-waiting 8
    .venv/bin/python benchmarks/login_flood.py --modes pool --nice 0    # threads not niced
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
from tornado import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from workshop import passwordcheck
from workshop.authenticator import UsersFileAuthenticator

COST = 12  # what roster.format_account (the dashboard's "add participant") writes
PROBE = 0.010


class InlineAuthenticator(UsersFileAuthenticator):
    """The behaviour before: the bcrypt check runs on the event loop itself."""

    async def authenticate(self, handler, data):  # type: ignore[override]
        roster = self.current_roster()
        account = roster.accounts.get(data["username"]) if roster else None
        if account is None or not account.check_password(data["password"]):
            return None
        return {"name": account.name}


def ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]:.0f}"


@dataclass
class Run:
    mode: str
    lags: list[float] = field(default_factory=list)
    known: list[float] = field(default_factory=list)  # checked wrong attempts, listed name
    unknown: list[float] = field(default_factory=list)  # ... for a name nobody has
    busy: int = 0  # refused at once (429): the queue was full
    real: list[tuple[float, bool]] = field(default_factory=list)

    def row(self) -> str:
        real_ok = [t for t, ok in self.real if ok]
        checked = len(self.known) + len(self.unknown)
        return (f"| {self.mode:<6} | {ms(self.lags, 0.5):>5} | {ms(self.lags, 0.95):>5} | "
                f"{ms(self.lags, 1.0):>6} | {checked:>4} / {self.busy:<4} | "
                f"{ms(self.known, 0.5):>6} / {ms(self.unknown, 0.5):>6} | "
                f"{len(real_ok):>2} / {len(self.real):<2} | {ms(real_ok, 0.5):>6} |")


HEADER = ("| mode   | lag p50 ms | p95 | max | checked / refused 429 | "
          "checked p50 ms: listed / unknown name | real logins ok | real p50 ms |")


def gil_released() -> str:
    """Whether a thread in bcrypt.checkpw lets other Python threads run.

    Measured as the longest pause of a Python loop in this thread while another thread runs
    three checks: with the GIL held, the loop would stop for a whole check (the interpreter
    cannot switch away from a thread inside C code that keeps it); released, it only
    waits for a CPU, which on a busy machine is a few milliseconds.
    """
    hashed = bcrypt.hashpw(b"x", bcrypt.gensalt(COST))
    started = time.perf_counter()
    bcrypt.checkpw(b"y", hashed)
    one = time.perf_counter() - started
    worker = threading.Thread(target=lambda: [bcrypt.checkpw(b"y", hashed) for _ in range(3)])
    longest, last = 0.0, time.perf_counter()
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    verdict = "released" if longest < one / 2 else "HELD"
    return (f"bcrypt {bcrypt.__version__} checkpw, cost {COST}: one check {1000 * one:.0f} ms; "
            f"longest pause of another Python thread meanwhile {1000 * longest:.1f} ms: "
            f"GIL {verdict}")


def users_file(directory: Path, participants: int) -> tuple[Path, str]:
    password = "the-right-password"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(COST)).decode()
    path = directory / "users.txt"
    path.write_text("".join(f"p{i:03d}:{hashed}\n" for i in range(participants)))
    return path, password


async def flood(auth: UsersFileAuthenticator, run: Run, rate: float, seconds: float,
                participants: int, password: str) -> None:
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(PROBE)
            run.lags.append(max(0.0, time.perf_counter() - started - PROBE))

    async def login(name: str, given: str) -> bool | None:
        """True/False: checked; None: refused at once (429, the pool is full)."""
        try:
            return await auth.authenticate(None, {"username": name, "password": given}) \
                is not None
        except web.HTTPError:
            run.busy += 1
            return None

    async def attempt(name: str) -> None:
        started = time.perf_counter()
        if await login(name, "wrong") is not None:
            listed = not name.startswith("stranger")
            (run.known if listed else run.unknown).append(time.perf_counter() - started)

    async def real_login(name: str) -> None:
        started = time.perf_counter()
        ok = await login(name, password)
        run.real.append((time.perf_counter() - started, bool(ok)))

    tasks = [asyncio.create_task(probe())]
    begin = time.perf_counter()
    n = 0
    while (now := time.perf_counter() - begin) < seconds:
        if n < now * rate:
            name = f"p{n % participants:03d}" if n % 2 else f"stranger{n}"
            tasks.append(asyncio.create_task(attempt(name)))
            if n % max(1, round(rate)) == 0:
                tasks.append(asyncio.create_task(real_login(f"p{(n // 7) % participants:03d}")))
            n += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks[1:])
    stop.set()
    await tasks[0]


def measure(mode: str, path: Path, password: str, args: argparse.Namespace) -> Run:
    cls = InlineAuthenticator if mode == "inline" else UsersFileAuthenticator
    auth = cls(users_file=str(path), users_sync_status=str(path.parent / "sync.json"),
               password_check_threads=args.threads, max_waiting_checks=args.max_waiting)
    run = Run(mode)
    auth.log = logging.getLogger(f"login-flood.{mode}")
    auth.log.setLevel(logging.CRITICAL)  # a line per failed attempt: not here
    asyncio.run(flood(auth, run, args.rate, args.seconds, args.participants, password))
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20, help="wrong attempts per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="password-check threads")
    parser.add_argument("--max-waiting", type=int, default=16)
    parser.add_argument("--modes", default="pool,inline")
    parser.add_argument("--nice", type=int, default=passwordcheck.WORKER_NICE,
                        help="niceness of the password-check threads (0: as the loop's)")
    args = parser.parse_args(argv)
    passwordcheck.WORKER_NICE = args.nice
    print(gil_released())
    with tempfile.TemporaryDirectory() as directory:
        path, password = users_file(Path(directory), args.participants)
        runs = [measure(mode, path, password, args) for mode in args.modes.split(",")]
    print(f"\n{args.rate:g} wrong attempts/s for {args.seconds:g} s against "
          f"{args.participants} bcrypt accounts (cost {COST}); threads={args.threads}, "
          f"max waiting={args.max_waiting}, nice={args.nice}; lag = how late a 10 ms timer "
          "fires\n")
    print(HEADER)
    print("|" + "---|" * 8)
    for run in runs:
        print(run.row())
    print("\nmean lag: " + ", ".join(f"{r.mode} {1000 * statistics.fmean(r.lags):.1f} ms"
                                      for r in runs if r.lags))
    print("reproduce: .venv/bin/python benchmarks/login_flood.py " + " ".join(
        argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
