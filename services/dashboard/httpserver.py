"""The dashboard's HTTP server: waitress, with every limit chosen for untrusted clients.

Participants can open any number of connections to the dashboard's port from their
kernels, all from 127.0.0.1, and send slowly or not at all. With waitress's defaults,
100 idle connections (its connection_limit) made the dashboard stop answering for two
minutes (its channel_timeout), and a 200 MiB POST was spooled to disk before the app
could answer 401. Here:

- many connections are allowed (poll(), not select(): no 1024-descriptor ceiling), and
  idle ones are closed quickly, so a pile of them is cleared within seconds;
- a request must arrive in time: its headers within HEADER_TIMEOUT, all of it within
  REQUEST_TIMEOUT (slowloris);
- the body is judged from the headers before it is read (door.py): without credentials,
  or larger than its route takes, the answer is 401/413 at once, in JSON like the app's
  own errors, and the rest of the body is never stored;
- after such an answer the connection closes the way nginx's does ("lingering close"):
  the answer goes out, then whatever the client still sends is read and thrown away for
  a moment before the socket closes. Closing with unread bytes in the socket makes the
  kernel send a reset, and a reset arriving before the client read the answer destroys
  it: behind configurable-http-proxy, still streaming the body, a 10 MB POST got the
  proxy's "503 write ECONNRESET" page instead of the 401/413 (tests/e2e/faults).
"""

from __future__ import annotations

import json
import logging
import resource
import socket
import time
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import Error, RequestEntityTooLarge

from .door import LARGEST_BODY, Door, Refusal

log = logging.getLogger("dashboard")

KiB = 1024
MiB = 1024 * KiB

# Requests served at once. Most take milliseconds; a few wait on the hub (a token check,
# at most 5 s) or render a page. Eight keeps the instructor's pages answering while
# saves arrive; more would only queue on SQLite's and the renderer's locks.
THREADS = 8
# Open connections at most. A class of 100 needs a few tens (saves are one short
# connection each; the proxy keeps a few for pages). A thousand makes "open many and
# wait" cost a participant real effort, and is what the descriptor budget below holds.
CONNECTION_LIMIT = 1000
FDS_PER_CONNECTION = 3  # the socket, and a spool file each way at worst
RESERVED_FDS = 64  # SQLite, logs, the hub's connections, notebooks being read
# Connections the kernel holds for us before they are accepted (waitress's default).
BACKLOG = 1024
# A connection that sent nothing for this long is closed: a keep-alive between requests
# of the proxy is reopened at no cost; a pile of idle sockets is gone in seconds.
CHANNEL_TIMEOUT = 15
CLEANUP_INTERVAL = 2  # how often idle and late connections are looked for
# Headers arrive in one packet from the proxy or the save hook; a client that trickles
# them is holding a connection, not sending a request.
HEADER_TIMEOUT = 10
# A whole request, body included: the largest (a 100 MiB upload) comes from nginx, which
# buffers it first, over the loopback in about a second.
REQUEST_TIMEOUT = 60
# Request headers: nginx in front allows 4 × 8 KiB; a hub token or cookie is ~100 bytes.
MAX_REQUEST_HEADER_SIZE = 32 * KiB
# Bodies up to this stay in memory; larger ones (only uploads get past the door) are
# spooled to a temporary file while they arrive.
INBUF_OVERFLOW = 256 * KiB
# Responses past this are spooled to a file while a slow client reads them (zips), and a
# route writing more than OUTBUF_HIGH_WATERMARK waits for the client.
OUTBUF_OVERFLOW = 1 * MiB
OUTBUF_HIGH_WATERMARK = 8 * MiB
# After an error answer (a refused body), the rest of the body is read and dropped for at
# most this long, and at most as much as the largest body any route takes: a proxy
# streaming a body nginx let through (100 MiB at most) finishes sending it over the
# loopback in well under a second and then reads the answer. A client sending more, or
# trickling, is cut off with a reset: it was not going to be answered anyway.
LINGER_SECONDS = 2.0
LINGER_BYTES = LARGEST_BODY
LINGER_READ = 256 * KiB  # per read while draining (waitress reads 8 KiB for requests)


def settings() -> dict[str, Any]:
    """waitress's adjustments, every one on purpose (see above)."""
    return {
        "threads": THREADS,
        "backlog": BACKLOG,
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": CHANNEL_TIMEOUT,
        "cleanup_interval": CLEANUP_INTERVAL,
        "max_request_header_size": MAX_REQUEST_HEADER_SIZE,
        "max_request_body_size": LARGEST_BODY + 1,  # waitress refuses at >=
        "inbuf_overflow": INBUF_OVERFLOW,
        "outbuf_overflow": OUTBUF_OVERFLOW,
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,
        "asyncore_use_poll": True,
        "expose_tracebacks": False,
        # X-Forwarded-Proto reaches the app, which reads only it, to mark its cookie
        # Secure behind https (auth.is_https); waitress's default removed it.
        "clear_untrusted_proxy_headers": False,
        "ident": "dashboard",
    }


def fd_budget(connections: int = CONNECTION_LIMIT) -> int:
    """Raise the open-files limit to what `connections` need (as far as the hard limit
    allows) and return how many connections fit in it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections * FDS_PER_CONNECTION + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return connections
    fit = max(1, min(connections, (soft - RESERVED_FDS) // FDS_PER_CONNECTION))
    if fit < connections:
        log.warning("open-files limit %d holds %d connections, not %d", soft, fit,
                    connections)
    return fit


class Refused(Error):
    """A door refusal as waitress's error response, in the app's JSON shape."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.code = refusal.status
        self.reason = refusal.reason

    def to_response(self, ident: str | None = None) -> tuple[str, list, bytes]:
        body = json.dumps({"error": self.reason, "message": self.body, "status": self.code})
        return (f"{self.code} {self.reason}", [("Content-Type", "application/json")],
                body.encode())


class DoorParser(HTTPRequestParser):
    """waitress's request parser, asking the door once the headers are in."""

    door: Door  # set by server_class()

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()
        self.body_limit = 0
        self.refusal: Refusal | None = None  # set with body_limit once headers are in

    def received(self, data: bytes) -> int:
        in_headers = not self.headers_finished
        consumed = super().received(data)
        if in_headers and self.headers_finished and (
                self.error is None or isinstance(self.error, RequestEntityTooLarge)):
            # waitress's own "too large" (past every route's limit) gets the door's
            # answer instead: 401 without credentials, else 413, in JSON.
            self.body_limit, self.refusal = self.door.limit_for(
                self.command, self.path, self.headers.get("AUTHORIZATION", ""),
                self.headers.get("COOKIE", ""))
        if self.refusal is not None and not isinstance(self.error, Refused):
            # Content-Length is judged before any of the body is read; a chunked body as
            # it arrives (waitress counts it in body_bytes_received).
            size = self.body_bytes_received if self.chunked else self.content_length
            if size > self.body_limit:
                self.error = Refused(self.refusal)
                self.completed = True
                self.expect_continue = False  # no "100 Continue": the body is not wanted
        return consumed

    def late(self, now: float) -> bool:
        limit = REQUEST_TIMEOUT if self.headers_finished else HEADER_TIMEOUT
        return not self.completed and now - self.started > limit


class LingeringErrorTask(ErrorTask):
    """waitress's error answer (a door refusal, a malformed request): it closes the
    connection with the request's body unread, so the channel lingers first."""

    def execute(self) -> None:
        self.channel.linger_after_close = True
        super().execute()


class LingeringChannel(HTTPChannel):
    """A channel that, after an error answer, half-closes and drains before closing."""

    error_task_class = LingeringErrorTask
    linger_after_close = False
    linger_until: float | None = None  # set while draining
    drained = 0

    def handle_close(self) -> None:
        if self.linger_after_close and self.linger_until is None and self.connected:
            try:
                # The answer is flushed (waitress closes only then): FIN after it.
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client is gone already: nothing to protect
            else:
                self.linger_until = time.monotonic() + LINGER_SECONDS
                self.will_close = False  # readable() again, and nothing more to write
                return
        super().handle_close()

    def handle_read(self) -> None:
        if self.linger_until is None:
            super().handle_read()
            return
        try:
            data = self.socket.recv(LINGER_READ)
        except BlockingIOError:
            return  # woken without data: keep waiting
        except OSError:
            data = b""
        self.drained += len(data)
        # End of the body (the client closed), or enough: close for real.
        if not data or self.drained > LINGER_BYTES or time.monotonic() > self.linger_until:
            super().handle_close()


class DoorServer(TcpWSGIServer):
    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        clock = time.monotonic()
        for channel in list(self.active_channels.values()):
            request = channel.request  # the request being received, if any
            if isinstance(request, DoorParser) and request.late(clock):
                channel.will_close = True
            lingering = getattr(channel, "linger_until", None)
            if lingering is not None and clock > lingering:
                channel.will_close = True  # a client that neither sends nor closes

    def stop(self) -> None:
        """Stop serving, from any thread: the loop closes every socket and `run` returns."""
        # Requests being served finish first (5 s at most): closing their sockets under
        # them would only turn their answers into errors in the log.
        self.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        self.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))


def server_class(door: Door) -> type[DoorServer]:
    parser = type("DashboardParser", (DoorParser,), {"door": door})
    channel = type("DashboardChannel", (LingeringChannel,), {"parser_class": parser})
    return type("DashboardServer", (DoorServer,), {"channel_class": channel})


def make_server(app: Flask, sock: socket.socket, **overrides: Any) -> DoorServer:
    """A server for `app` on the listening socket `sock`; `run()` serves until stopped."""
    door: Door = app.extensions["dashboard"]["door"]
    options = {**settings(), **overrides}
    options["connection_limit"] = fd_budget(options["connection_limit"])
    adj = Adjustments(sockets=[sock], **options)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return server_class(door)(
        app, map={}, _sock=sock, dispatcher=dispatcher, adj=adj, bind_socket=False,
        sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
