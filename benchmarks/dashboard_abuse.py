"""What a participant's kernel can do to the dashboard's port, measured: the dashboard's
own server (services/dashboard/httpserver.py) against waitress with its defaults (how
the dashboard was served before), both in this process on 127.0.0.1.

* idle pile: N sockets that send nothing, then one real request (GET /health): its time;
* big anonymous body: POST /events with Content-Length 200 MiB and no token, the body
  streamed: time to the answer and how much of the body the server took first;
* oversized events: 50 events with a 200 KB extra field each, with a token: statuses and
  database growth;
* token checks: 16 threads checking tokens at once against a fake hub (25 ms per
  answer): errors and hub calls.

    .venv/bin/python benchmarks/dashboard_abuse.py
    .venv/bin/python benchmarks/dashboard_abuse.py --idle 300
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from waitress import wasyncore
from waitress.server import create_server

from dashboard.httpserver import make_server
from dashboard.tokens import HubTokenCheck
from tests.unit.dashboard.dashapp import ACCESS, EVENTS, PREFIX, make_app
from tests.unit.dashboard.fakehub import FakeHub, serving

MiB = 1024 * 1024


def ours(app, sock):
    return make_server(app, sock)


def stock(app, sock):
    return create_server(app, sockets=[sock], threads=8)  # waitress.serve's defaults


@contextmanager
def running(app, kind: Callable) -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    server = kind(app, sock)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:  # as DoorServer.stop does, for both
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(5)


def idle_pile(app, kind: Callable, count: int) -> str:
    with running(app, kind) as port:
        pile = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", f"{PREFIX}/health")
            status = conn.getresponse().status
            return f"{status} after {time.monotonic() - started:.3f} s"
        except TimeoutError:
            return "no answer within 5 s"
        finally:
            for s in pile:
                s.close()


def big_anonymous_body(app, kind: Callable) -> str:
    with running(app, kind) as port:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"POST {EVENTS} HTTP/1.1\r\nHost: x\r\nContent-Length: {200 * MiB}\r\n"
                  "Content-Type: application/json\r\n\r\n".encode())
        started, sent, answer = time.monotonic(), 0, b""
        s.setblocking(False)
        chunk = b"x" * MiB
        while not answer and time.monotonic() - started < 30:
            with suppress(BlockingIOError):
                answer = s.recv(200)
            if sent < 200 * MiB and not answer:
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    break  # closed on us: read what it said
        s.setblocking(True)
        s.settimeout(2)
        with suppress(OSError):
            answer = answer or s.recv(200)
        s.close()
        status = answer.split(b" ", 2)[1].decode() if answer else "none"
        return (f"{status} after {time.monotonic() - started:.3f} s, with "
                f"{sent / MiB:.1f} MiB of the body sent (or in socket buffers) by then")


def oversized_events(tmp: Path) -> str:
    tmp.mkdir()
    app = make_app(tmp)
    client = app.test_client()
    db = tmp / "state" / "events.sqlite"
    before = sum(p.stat().st_size for p in db.parent.glob("events.sqlite*"))
    statuses: dict[int, int] = {}
    for n in range(50):
        body = {"type": "save-notebook", "user": "alice", "path": f"n{n}.ipynb",
                "notes": "x" * 200_000}
        r = client.post(EVENTS, json=body, headers={"Authorization": "token alice-token"})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    after = sum(p.stat().st_size for p in db.parent.glob("events.sqlite*"))
    return f"statuses {statuses}, database grew {(after - before) / MiB:.2f} MiB"


def token_checks() -> str:
    people = {f"tok-{n}": {"name": f"u{n}", "scopes": [ACCESS]} for n in range(16)}
    hub = FakeHub(people, delay=0.025)
    with serving(hub) as url:
        check = HubTokenCheck(url)
        start = threading.Barrier(16)

        def work(n: int) -> int:
            start.wait()
            wrong = 0
            for i in range(50):
                user = check(f"tok-{(n + i) % 16}")
                wrong += user is None or user["name"] != f"u{(n + i) % 16}"
            return wrong

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            wrong = sum(pool.map(work, range(16)))
    return (f"800 checks in {time.monotonic() - started:.2f} s, {wrong} wrong or failed, "
            f"{hub.calls} hub calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=150, help="idle sockets (150)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp))
        for name, kind in (("dashboard server", ours), ("waitress defaults", stock)):
            print(f"{name}:")
            print(f"  {args.idle} idle sockets, then GET /health: "
                  f"{idle_pile(app, kind, args.idle)}")
            print(f"  200 MiB POST without a token: {big_anonymous_body(app, kind)}")
        print(f"50 events with a 200 KB extra field: {oversized_events(Path(tmp) / 'ev')}")
        print(f"16 threads checking tokens: {token_checks()}")
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
