"""The save hook's delivery (etc/jupyter/jupyter_server_config.py): saves never wait,
and what the dashboard could not take while it restarted arrives once it is back."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from traitlets.config import Config

CONFIG = Path(__file__).resolve().parents[3] / "etc/jupyter/jupyter_server_config.py"


class Dashboard(ThreadingHTTPServer):
    """A stand-in for POST /events: down (503) until told otherwise, then it stores."""

    def __init__(self) -> None:
        self.up = False
        self.refuse: set[str] = set()
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Dashboard

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.server.up:
            self.send_response(503)
        elif event["path"] in self.server.refuse:
            self.send_response(400)
        else:
            self.server.received.append(event)
            self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook(monkeypatch):
    server = Dashboard()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("WORKSHOP_EVENTS_URL", f"http://127.0.0.1:{server.server_port}/events")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "participant-token")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    namespace = {"c": Config()}
    exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), namespace)
    namespace["RETRY_FIRST"], namespace["RETRY_MAX"] = 0.05, 0.2  # seconds, for the test
    yield namespace, server
    server.shutdown()


def save(namespace: dict, path: str) -> float:
    started = time.monotonic()
    namespace["post_save_hook"]({"type": "notebook", "name": path.rsplit("/", 1)[-1],
                                 "path": path}, f"/home/alice/{path}", None)
    return time.monotonic() - started


def test_saves_while_the_dashboard_restarts_arrive_once_it_is_back(hook):
    namespace, dashboard = hook
    took = [save(namespace, p) for p in ("a.ipynb", "b.ipynb", "a.ipynb")]
    assert max(took) < 0.05  # a save never waits for the dashboard
    time.sleep(0.5)
    assert dashboard.received == []  # down meanwhile: retried, not dropped
    dashboard.up = True
    deadline = time.monotonic() + 5
    while len(dashboard.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The newest save of each notebook, once each, oldest notebook first.
    assert [e["path"] for e in dashboard.received] == ["b.ipynb", "a.ipynb"]
    assert all(e["user"] == "alice" and e["type"] == "save-notebook"
               for e in dashboard.received)


def test_an_event_the_dashboard_refuses_is_not_sent_again(hook):
    namespace, dashboard = hook
    dashboard.up, dashboard.refuse = True, {"bad.ipynb"}
    save(namespace, "bad.ipynb")
    save(namespace, "good.ipynb")
    deadline = time.monotonic() + 5
    while not dashboard.received and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert [e["path"] for e in dashboard.received] == ["good.ipynb"]
    assert not namespace["POSTER"].pending


def test_a_long_outage_keeps_the_newest_saves_of_at_most_backlog_notebooks(hook):
    namespace, _ = hook
    poster = namespace["POSTER"]
    poster.backlog = 3
    for n in range(5):
        save(namespace, f"n{n}.ipynb")
    assert list(poster.pending) == ["n2.ipynb", "n3.ipynb", "n4.ipynb"]
