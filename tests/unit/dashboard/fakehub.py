"""A stand-in for the hub's `GET /hub/api/user`: whose token is this (and its scopes)?"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeHub:
    def __init__(self, users: dict[str, dict[str, Any]], delay: float = 0.0) -> None:
        self.users = users
        self.delay = delay  # seconds per answer: makes concurrent checks overlap
        self.status: int | None = None  # answer this instead (a hub in trouble)
        self.calls = 0
        self._lock = threading.Lock()

    def answer(self, authorization: str) -> tuple[int, Any]:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        if self.status is not None:
            return self.status, {"message": "hub trouble"}
        token = authorization.removeprefix("token ")
        user = self.users.get(token)
        return (200, user) if user else (403, {"status": 403, "message": "Forbidden"})


@contextmanager
def serving(hub: FakeHub) -> Iterator[str]:
    """Serve `hub` on a free port of 127.0.0.1; yields its API URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/hub/api/user":
                status, body = 404, {"message": "not here"}
            else:
                status, body = hub.answer(self.headers.get("Authorization", ""))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64  # 16 threads connect at once (the default queue is 5)

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hub/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
