"""The dashboard's real HTTP server (waitress, in-process) against what a participant's
kernel can do to its port: many idle connections, huge bodies without a token, slow
headers. Each test serves the real app on a free port of 127.0.0.1 and stops it after.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from flask import Flask, request

from dashboard import httpserver
from dashboard.api import EVENT_BODY_MAX
from dashboard.door import ANONYMOUS_BODY_MAX, Door
from dashboard.httpserver import DoorServer, make_server

from .dashapp import EVENTS, PREFIX, TEACHER, make_app

MiB = 1024 * 1024
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("dashboard"))


@contextmanager
def serving(app: Flask, **overrides) -> Iterator[tuple[DoorServer, int]]:
    sock = socket.create_server(("127.0.0.1", 0))
    server = make_server(app, sock, **overrides)
    thread = threading.Thread(target=server.run, name="test-waitress", daemon=True)
    thread.start()
    try:
        yield server, sock.getsockname()[1]
    finally:
        server.stop()
        thread.join(5)
        assert not thread.is_alive(), "the server did not stop"


def get(path: str, port: int, timeout: float = 2.0, headers=None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def read_response(sock: socket.socket, timeout: float = 2.0) -> tuple[int, dict, bytes]:
    """Status, headers and body of the one response on `sock` (raw, for attack tests)."""
    sock.settimeout(timeout)
    data = b""
    with suppress(ConnectionResetError):  # the server may reset after answering
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(headers.get("Content-Length", 0))
        while len(body) < length and (chunk := sock.recv(65536)):
            body += chunk
        return int(lines[0].split()[1]), headers, body
    raise AssertionError(f"no complete response, got {data[:200]!r}")


def spooled() -> set[str]:
    """Temporary files this process (the server) holds open: where waitress spools."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(tempfile.gettempdir()):
                found.add(target)
    return found


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


# -- connections ------------------------------------------------------------------------
def test_limits_are_the_named_ones(app):
    with serving(app) as (server, _):
        adj = server.adj
        assert adj.connection_limit == httpserver.CONNECTION_LIMIT  # fits the fd budget
        assert adj.channel_timeout == httpserver.CHANNEL_TIMEOUT
        assert adj.cleanup_interval == httpserver.CLEANUP_INTERVAL
        assert adj.threads == httpserver.THREADS and adj.asyncore_use_poll
        assert adj.max_request_header_size == httpserver.MAX_REQUEST_HEADER_SIZE
        assert adj.inbuf_overflow == httpserver.INBUF_OVERFLOW


def test_150_idle_connections_leave_it_answering(app):
    # Before: waitress's default connection_limit (100) was reached by 100 sockets that
    # send nothing, and the dashboard stopped answering until they timed out (120 s).
    with serving(app) as (_, port):
        idle = [connect(port) for _ in range(150)]
        try:
            started = time.monotonic()
            assert get(f"{PREFIX}/health", port=port).status == 200
            assert time.monotonic() - started < 2
        finally:
            for s in idle:
                s.close()


def test_the_same_pile_stopped_waitress_with_its_defaults(app):
    # The test above can fail: with waitress's default limit, the same request waits.
    with serving(app, connection_limit=100, channel_timeout=120) as (_, port):
        idle = [connect(port) for _ in range(150)]
        try:
            with pytest.raises(TimeoutError):
                get(f"{PREFIX}/health", port=port, timeout=1.5)
        finally:
            for s in idle:
                s.close()


def test_past_the_limit_idle_connections_are_closed_and_it_answers_again(app):
    with serving(app, connection_limit=20, channel_timeout=1, cleanup_interval=1) as (_, port):
        idle = [connect(port) for _ in range(30)]
        try:
            started = time.monotonic()
            assert get(f"{PREFIX}/health", port=port, timeout=8).status == 200
            assert time.monotonic() - started < 6
            # and the pile was closed by the server, not by us
            assert all(s.recv(1) == b"" for s in idle[:20])
        finally:
            for s in idle:
                s.close()


def test_headers_sent_slowly_are_cut_off(app, monkeypatch):
    monkeypatch.setattr(httpserver, "HEADER_TIMEOUT", 1)
    with serving(app, cleanup_interval=1) as (_, port):
        s = connect(port)
        s.sendall(f"GET {PREFIX}/health HTTP/1.1\r\n".encode())
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < 6:
            try:
                s.sendall(b"X-Slow: 1\r\n")  # activity that keeps channel_timeout away
                s.settimeout(0.3)
                closed = s.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed and time.monotonic() - started < 4
        s.close()


# -- bodies -----------------------------------------------------------------------------
def post_head(path: str, length: int | None, headers: str = "") -> bytes:
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"{headers}{size}\r\n\r\n").encode()


def test_a_200_mib_body_without_a_token_is_refused_before_it_is_read(app):
    # Before: waitress read all 200 MiB into a temporary file, then the app said 401.
    with serving(app) as (_, port):
        before = spooled()
        s = connect(port)
        started = time.monotonic()
        s.sendall(post_head(EVENTS, 200 * MiB))
        status, headers, body = read_response(s)
        assert status == 401 and time.monotonic() - started < 1
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"error": "Unauthorized", "status": 401,
                                    "message": "a JupyterHub token is required "
                                               "(Authorization: token ...)"}
        # The server closed the connection without reading on: the body has nowhere to go.
        with pytest.raises(OSError):
            for _ in range(200):
                s.sendall(b"x" * MiB)
        s.close()
        assert spooled() == before


@pytest.mark.parametrize(("headers", "status"), [("", 401),
                                                  ("Authorization: token x\r\n", 413)])
def test_a_refused_body_sent_in_full_still_gets_its_answer(app, headers, status):
    # What a proxy does (configurable-http-proxy streams the body on): send all of it,
    # then read. Closed with the body unread, the socket reset the connection and the
    # answer was lost (the proxy's 503 page); now the rest is read and dropped first.
    with serving(app) as (_, port):
        before = spooled()
        for _ in range(3):
            s = connect(port)
            s.sendall(post_head(EVENTS, 10 * MiB, headers) + b"x" * (10 * MiB))
            got, _, body = read_response(s, timeout=5)
            assert got == status and json.loads(body)["status"] == status
            s.close()
        assert spooled() == before


def test_a_client_that_keeps_the_connection_open_is_cut_off_after_lingering(app):
    with serving(app, cleanup_interval=0.2) as (_, port):
        s = connect(port)
        s.sendall(post_head(EVENTS, 10 * MiB) + b"x" * MiB)
        assert read_response(s)[0] == 401
        started = time.monotonic()
        s.settimeout(httpserver.LINGER_SECONDS + 3)
        assert s.recv(10) == b""  # the server's FIN came with the answer
        with pytest.raises(OSError):  # and it stops listening after LINGER_SECONDS
            while time.monotonic() - started < httpserver.LINGER_SECONDS + 3:
                s.sendall(b"x" * 65536)
                time.sleep(0.05)
        assert time.monotonic() - started < httpserver.LINGER_SECONDS + 3
        s.close()


def test_the_spool_measurement_sees_a_body_that_is_read(app):
    # The control for the test above: an instructor's upload is read, and spooled.
    with serving(app) as (_, port):
        before = spooled()
        s = connect(port)
        s.sendall(post_head(f"{PREFIX}/materials", 4 * MiB,
                            "Authorization: token teacher-token\r\n"))
        s.sendall(b"x" * MiB)
        deadline = time.monotonic() + 3
        while spooled() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spooled() - before, "a body past INBUF_OVERFLOW is spooled while it arrives"
        s.close()


def test_a_body_larger_than_its_route_takes_is_413_before_it_is_read(app):
    with serving(app) as (_, port):
        s = connect(port)
        s.sendall(post_head(EVENTS, EVENT_BODY_MAX + 1, "Authorization: token x\r\n"))
        status, _, body = read_response(s)
        assert status == 413 and str(EVENT_BODY_MAX) in json.loads(body)["message"]
        s.close()


def test_a_small_body_without_a_token_still_reaches_the_app(app):
    # A form re-posted from a page whose session expired: the app answers (here 404 for
    # a route that does not exist), so a browser can still be sent to the login.
    with serving(app) as (_, port):
        s = connect(port)
        s.sendall(post_head(f"{PREFIX}/nowhere", 100) + b"{" * 100)
        status, _, _ = read_response(s)
        assert status == 404
        s.close()


@pytest.mark.parametrize(("path", "headers", "limit", "status"), [
    (EVENTS, "", ANONYMOUS_BODY_MAX, 401),
    (EVENTS, "Authorization: token x\r\n", EVENT_BODY_MAX, 413),
])
def test_chunked_bodies_are_cut_at_the_same_limits(app, path, headers, limit, status):
    with serving(app) as (_, port):
        s = connect(port)
        s.sendall(post_head(path, None, headers))
        payload = b"x" * 1000
        sent = 0
        while sent <= limit:
            s.sendall(b"%x\r\n%s\r\n" % (len(payload), payload))
            sent += len(payload)
        got, _, _ = read_response(s)
        assert got == status
        s.close()


def test_a_real_post_with_a_token_is_served(app):
    with serving(app) as (_, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        body = json.dumps({"type": "save-notebook", "user": "alice", "path": "s.ipynb"})
        conn.request("POST", EVENTS, body=body, headers={
            "Authorization": "token alice-token", "Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 201 and json.loads(r.read())["path"] == "s.ipynb"
        r = get(EVENTS, port=port, headers=TEACHER)
        assert r.status == 200
        conn.close()


def test_x_forwarded_proto_reaches_the_app():
    # auth.is_https reads it to mark the session cookie Secure behind https; waitress's
    # default (clear_untrusted_proxy_headers) removed it before the app saw it.
    tiny = Flask(__name__)
    tiny.extensions["dashboard"] = {"door": Door("/", lambda *_: False)}
    seen = []

    @tiny.get("/")
    def index():
        seen.append(request.headers.get("X-Forwarded-Proto"))
        return "ok"

    with serving(tiny) as (_, port):
        assert get("/", port=port, headers={"X-Forwarded-Proto": "https"}).status == 200
    assert seen == ["https"]


def test_the_connection_limit_fits_the_open_files_limit(monkeypatch):
    limits = {"now": (256, 512)}
    monkeypatch.setattr(httpserver.resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(httpserver.resource, "setrlimit",
                        lambda _, value: limits.update(now=value))
    # 1000 connections need 3064 descriptors: raised to the hard limit, and what fits.
    assert httpserver.fd_budget(1000) == (512 - httpserver.RESERVED_FDS) // 3
    assert limits["now"] == (512, 512)
    limits["now"] = (4096, 4096)
    assert httpserver.fd_budget(1000) == 1000 and limits["now"] == (4096, 4096)
