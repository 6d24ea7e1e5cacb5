"""A stand-in for the dashboard's events API, for the kernel extension's tests: records
what is posted, answers what it is told, and can go away and come back on its port."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeDashboard:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.posts: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        self.status = 201  # what a POST gets
        self.retry_after: int | None = None
        self.help_answer: dict[str, Any] = {"open": None, "recent": []}
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/dashboard/events"

    def executions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for p in self.posts if p.get("type") == "executions"
                    for e in p["executions"]]

    def start(self) -> FakeDashboard:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake._lock:
                    fake.posts.append(json.loads(body))
                    fake.tokens.append(self.headers.get("Authorization", ""))
                self._answer(fake.status, {"ok": True} if fake.status < 300 else
                             {"message": "no"})

            def do_GET(self) -> None:
                self._answer(200, fake.help_answer)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if fake.retry_after is not None:
                    self.send_header("Retry-After", str(fake.retry_after))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
