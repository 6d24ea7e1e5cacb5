"""The plumbing of a fake JSON API: https on 127.0.0.1, bearer token, request log, faults.

Subclasses implement `route()`; this class answers 401 for a wrong token,
applies the faults a test asked for (an error status for the next N matching
requests, optionally after doing the work, a Retry-After header, or a delay),
and logs every request for assertions.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.tls import TestCA

JSON = dict[str, Any]
Answer = tuple[int, JSON | None]
# DigitalOcean's error ids and texts for the statuses a fault can produce.
ERRORS = {400: ("bad_request", "Bad request."),
          401: ("unauthorized", "Unable to authenticate you."),
          404: ("not_found", "The resource you were accessing could not be found."),
          422: ("unprocessable_entity", "Unprocessable entity."),
          429: ("too_many_requests", "API rate limit exceeded.")}
SERVER_ERROR = ("server_error", "Unexpected server-side error")


def error(status: int, message: str | None = None) -> Answer:
    ident, text = ERRORS.get(status, SERVER_ERROR)
    return status, {"id": ident, "message": message or text}


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None  # None: only slow
    remaining: int
    retry_after: int | None = None
    after: bool = False  # do the work first, then answer with the error
    delay: float = 0.0
    message: str | None = None  # instead of the standard text for the status


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None


class FakeJsonApi:
    def __init__(self, ca: TestCA, workdir: Path, token: str) -> None:
        self.ca, self.workdir, self.token = ca, workdir, token
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        raise NotImplementedError

    # -- test controls ------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, times: int = 1,
             retry_after: int | None = None, after: bool = False,
             message: str | None = None) -> None:
        """Answer `status` to the next `times` requests matching method and path regex."""
        with self._lock:
            self.faults.append(Fault(method, re.compile(path), status, times, retry_after,
                                     after, message=message))

    def slow(self, method: str, path: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(method, re.compile(path), None, times, delay=seconds))

    def calls(self, method: str, path: str) -> list[Logged]:
        pattern = re.compile(path)
        with self._lock:
            return [e for e in self.log if e.method == method and pattern.fullmatch(e.path)]

    # -- serving ------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Any:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = self.ca.issue(self.workdir, ["127.0.0.1", "localhost"], "fake-api")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-api",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def answer(self, method: str, path: str, query: dict[str, str], body: Any,
               authorization: str | None) -> tuple[int, JSON | None, dict[str, str]]:
        if authorization != f"Bearer {self.token}":
            return (*error(401), {})
        fault = None
        with self._lock:
            for candidate in self.faults:
                if (candidate.remaining > 0 and candidate.method == method
                        and candidate.pattern.fullmatch(path)):
                    candidate.remaining -= 1
                    fault = candidate
                    break
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is None or fault.status is None:
            with self._lock:
                return (*self.route(method, path, query, body), {})
        if fault.after:
            with self._lock:
                self.route(method, path, query, body)
        extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
        return (*error(fault.status, fault.message), extra)


def _handler_for(api: FakeJsonApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as pydo's requests session expects

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is kept in api.log instead

        def _serve(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            status, answer, extra = api.answer(self.command, url.path, query, body,
                                               self.headers.get("Authorization"))
            with api._lock:
                api.log.append(Logged(self.command, url.path, query, status, body))
            payload = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("ratelimit-limit", "5000")
            self.send_header("ratelimit-remaining", "4999")
            self.send_header("ratelimit-reset", str(int(time.time()) + 60))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
