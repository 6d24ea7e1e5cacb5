"""Pushing the board to open pages: server-sent events, few of them, polling for the rest.

waitress serves with a fixed pool of threads (httpserver.THREADS, 8) and a stream holds
one for as long as it is open. So at most `MAX_STREAMS` streams run at once; a further
page gets 429 and polls instead (static/javascripts/live.js), which costs a short request
a second and no thread in between. Each stream ends after `STREAM_SECONDS` (the browser
reconnects at once, and its session is checked again), and says something every
`KEEPALIVE` seconds, so a page that went away frees its thread within that time.

How much this helps is measured (benchmarks/run_to_view.py): a poll a second leaves an
execution half a second unseen on average and up to a whole second; a stream shows it
as soon as it is stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# Of waitress's 8 threads: three boards (two instructors, one page being reloaded: a page
# that went away holds its slot until the next write to it fails), five for everything
# else, which takes milliseconds per request.
MAX_STREAMS = 3
STREAM_SECONDS = 300
KEEPALIVE = 5.0  # seconds; proxies keep the connection, a gone page is noticed
# After an update, wait this long before the next: a class running cells at the same
# moment gives one update, not sixty. Also the most an update can lag behind.
COALESCE = 0.1


class Changes:
    """A version number that goes up whenever anything on the board changed, and a way to
    wait for that."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = 0

    def bump(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.version != since, timeout)
            return self.version


class Slots:
    """At most `limit` streams at once."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.open = 0

    def take(self) -> bool:
        if not self._sem.acquire(blocking=False):
            return False
        with self._lock:
            self.open += 1
        return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1
        self._sem.release()


class Stream:
    """The body of one event stream: a WSGI iterable whose close() (which waitress calls
    however the response ended, even before it began) gives its slot back, once."""

    def __init__(self, slots: Slots, changes: Changes, version: Callable[[], str],
                 data: Callable[[], dict[str, Any]], *, seconds: float = STREAM_SECONDS,
                 keepalive: float = KEEPALIVE, coalesce: float = COALESCE) -> None:
        self.slots = slots
        self.changes = changes
        self.version = version  # the board's version: changes, lessons, the clock
        self.data = data
        self.seconds = seconds
        self.keepalive = keepalive
        self.coalesce = coalesce
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        deadline = time.monotonic() + self.seconds
        sent = None
        yield b"retry: 1000\n\n"  # the browser reconnects after a second when we end
        while time.monotonic() < deadline and not self._closed:
            seen = self.changes.version
            current = self.version()
            if current != sent:
                sent = current
                body = json.dumps(self.data(), separators=(",", ":"))
                yield f"event: board\ndata: {body}\n\n".encode()
                time.sleep(self.coalesce)
                continue
            wait = min(self.keepalive, deadline - time.monotonic())
            if self.changes.wait(seen, max(0.0, wait)) == seen:
                yield b": keepalive\n\n"

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.slots.give_back()
