"""The dashboard's CPU per 1000 execution events, with one live board open.

The real dashboard app (every module of it, the live view included) behind its real HTTP
server (waitress with the production limits) in this process; only the hub's token check
is a table (the real one asks the hub once per token per 5 s). A second process plays the
class: `--participants` participants post their executions as the kernel extension does
(its own sender's wire format, one connection per post, as urllib does), in batches of
each `--batch` size, while it also holds the instructor's board open as a server-sent
event stream, so every change is also drawn once for the board (coalesced). Measured: this
process's CPU time (user + system) while the events arrive.

    .venv/bin/python benchmarks/feed_cpu.py
    .venv/bin/python benchmarks/feed_cpu.py --events 3000 --batch 1,5,20 --participants 60
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))
sys.path.insert(0, str(ROOT))

from dashboard.app import create_app  # noqa: E402
from dashboard.auth import AuthGate  # noqa: E402
from dashboard.httpserver import make_server  # noqa: E402
from dashboard.settings import INSTRUCTOR_SCOPE, Settings  # noqa: E402
from tests.e2e.live.kit import LESSON, LESSON_JSON  # noqa: E402

ACCESS = "access:services!service=dashboard"
PREFIX = "/services/dashboard"

# The class: posts as the kernels do, plus one board streaming. Run as a subprocess.
CLIENT = r"""
import json, sys, threading, time, urllib.request, hashlib
from datetime import UTC, datetime
port, participants, events, size, lesson, cells = sys.argv[1:7]
participants, events, size = int(participants), int(events), int(size)
cells = json.loads(cells)
base = f"http://127.0.0.1:{port}/services/dashboard"
stop = threading.Event()
def board():
    req = urllib.request.Request(base + "/live/stream", headers={"Authorization": "token teacher"})
    with urllib.request.urlopen(req) as r:
        while not stop.is_set() and r.readline():
            pass
threading.Thread(target=board, daemon=True).start()
time.sleep(0.5)
per = events // participants
def participant(n):
    user, seq = f"p{n:02d}", 0
    while seq < per:
        batch = []
        for _ in range(min(size, per - seq)):
            seq += 1
            cell = cells[seq % len(cells)]
            batch.append({"seq": seq, "path": lesson, "cell": cell["id"], "count": seq,
                          "ok": seq % 4 != 0, "error": None if seq % 4 else
                          {"name": "NameError", "message": "name 'x' is not defined"},
                          "duration": 0.01, "at": datetime.now(UTC).isoformat(),
                          "head": cell["source"].split("\n")[0],
                          "source_hash": hashlib.sha256(cell["source"].encode()).hexdigest()[:16]})
        body = json.dumps({"type": "executions", "user": user, "kernel": "k", "dropped": 0,
                           "executions": batch}).encode()
        while True:
            req = urllib.request.Request(base + "/events", data=body, method="POST",
                headers={"Authorization": f"token {user}", "Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=10).read()
                break
            except urllib.error.HTTPError as e:
                if e.code != 429:
                    raise
                time.sleep(float(e.headers.get("Retry-After", 1)))
threads = [threading.Thread(target=participant, args=(n,)) for n in range(1, participants + 1)]
started = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
print(time.monotonic() - started)
stop.set()
"""


def gate(participants: int) -> AuthGate:
    users = {f"p{n:02d}": {"name": f"p{n:02d}", "kind": "user", "scopes": [ACCESS]}
             for n in range(1, participants + 1)}
    users["teacher"] = {"name": "teacher", "kind": "user", "scopes": [ACCESS, INSTRUCTOR_SCOPE]}
    return AuthGate(users.get, access_scopes={ACCESS}, instructor_scope=INSTRUCTOR_SCOPE,
                    cookie_name="dash", cookie_path=f"{PREFIX}/", secret=b"s" * 32)


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def run(size: int, events: int, participants: int) -> tuple[float, float, int]:
    tmp = Path(tempfile.mkdtemp(prefix="feed-cpu-"))
    (tmp / "materials" / "day1").mkdir(parents=True)
    (tmp / "materials" / LESSON).write_text(LESSON_JSON)
    names = [f"p{n:02d}" for n in range(1, participants + 1)]
    (tmp / "users.txt").write_text("\n".join(f"{n}:x" for n in names) +
                                   "\n[instructors]\nteacher:t\n")
    os.environ["WORKSHOP_USERS_SYNC_STATUS"] = str(tmp / "sync.json")
    settings = Settings(prefix=f"{PREFIX}/", state_dir=tmp / "state", output_dir=tmp / "out",
                        home_root=tmp / "home", users_file=tmp / "users.txt",
                        materials_dir=tmp / "materials", ledger_dir=tmp / "ledger")
    app = create_app(settings, gate(participants), start_worker=False)
    sock = socket.create_server(("127.0.0.1", 0))
    server = make_server(app, sock)
    threading.Thread(target=server.run, daemon=True).start()
    cells = [c for c in json.loads(LESSON_JSON)["cells"] if c["cell_type"] == "code"]
    before = cpu()
    out = subprocess.run([sys.executable, "-c", CLIENT, str(sock.getsockname()[1]),
                          str(participants), str(events), str(size), LESSON,
                          json.dumps(cells)], capture_output=True, text=True, check=True)
    used = cpu() - before
    stored = app.extensions["dashboard"]["live"].feed.count()
    server.stop()
    return used, float(out.stdout.strip()), stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch", default="1,5,20", help="records per post, comma-separated")
    parser.add_argument("--participants", type=int, default=60)
    args = parser.parse_args()
    events = args.events - args.events % args.participants
    print(f"dashboard CPU per 1000 execution events ({events} events from "
          f"{args.participants} participants, one board streaming; {os.cpu_count()} CPUs)")
    print(f"{'records/post':>12} | {'posts':>6} | {'CPU s':>6} | {'CPU ms / 1000 events':>20} |"
          f" {'wall s':>6} | stored")
    for size in (int(s) for s in args.batch.split(",")):
        used, wall, stored = run(size, events, args.participants)
        posts = args.participants * -(-events // args.participants // size)
        print(f"{size:>12} | {posts:>6} | {used:>6.2f} | {used / events * 1e6:>20.0f} | "
              f"{wall:>6.1f} | {stored}")
    print(f"\n  command: .venv/bin/python benchmarks/feed_cpu.py --events {args.events} "
          f"--batch {args.batch} --participants {args.participants}")


if __name__ == "__main__":
    main()
