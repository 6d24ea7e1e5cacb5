"""Delivering execution records to the dashboard from one background thread.

The kernel's thread only appends to a bounded buffer (`add`, microseconds, never blocks,
never raises). The sender thread posts what is buffered as one `executions` batch to the
dashboard's events API, at most one post per `interval`: a cell every few seconds goes
out at once, a loop of `run_cell` goes out in batches, and the dashboard's per-participant
rate (api.py: 30 at once, then 2 a second for all of a participant's posts) is never the
limit for one kernel.

When the dashboard is away, records wait in the buffer (posts are retried with a growing
pause, up to `max_backoff`) and, when it is full, the oldest are dropped and counted: the
count travels with every batch (`dropped`), so the board can say what it never saw. Every
record carries a sequence number of this kernel, so a batch posted twice (the answer was
lost) is stored once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .transport import Answer, request

# Records kept while the dashboard is away: a few minutes of a busy participant, ~0.5 MB.
BUFFER_LIMIT = 1000
# Posts at most this often (seconds). The events API allows a participant 2 a second for
# all their kernels and saves together.
INTERVAL = 1.0
# One post: below the events API's 64 KiB body limit, with room for the envelope.
BATCH_BYTES = 56 * 1024
BATCH_RECORDS = 200  # the dashboard's own limit per batch (feed.py)
# One post may wait this long: the dashboard may be asking the hub about the token.
TIMEOUT = 5.0
# Retries while the dashboard is away: 1, 2, 4, 8, then every 10 s. A restarted
# dashboard hears from every kernel within 10 s; 60 kernels knocking every 10 s cost
# nothing.
MAX_BACKOFF = 10.0

Post = Callable[[bytes, float], Answer]  # (body, timeout) -> the dashboard's answer


class Sender:
    def __init__(self, url: str, token: str, user: str, *, kernel: str | None = None,
                 buffer_limit: int = BUFFER_LIMIT, interval: float = INTERVAL,
                 batch_bytes: int = BATCH_BYTES, batch_records: int = BATCH_RECORDS,
                 timeout: float = TIMEOUT, max_backoff: float = MAX_BACKOFF,
                 post: Post | None = None) -> None:
        self.url = url
        self.user = user
        self.kernel = kernel or uuid.uuid4().hex  # this kernel process, for the dashboard
        self.buffer_limit = buffer_limit
        self.interval = interval
        self.batch_bytes = batch_bytes
        self.batch_records = batch_records
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._post = post or (lambda body, wait: request("POST", url, token, body, timeout=wait))
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque()
        self._seq = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_post = -interval
        # What happened, for the participant's `%feed`-style questions and the tests.
        self.sent = 0
        self.dropped = 0  # oldest records pushed out of a full buffer, or refused
        self.failures = 0  # posts that found no dashboard (or a broken one)
        self.last_problem = ""

    # -- the kernel's thread ------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        """Queue one record (its `seq` is set here). Never blocks, never raises."""
        try:
            with self._lock:
                self._seq += 1
                record["seq"] = self._seq
                if len(self._records) >= self.buffer_limit:
                    self._records.popleft()
                    self.dropped += 1
                self._records.append(record)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="workshop-feed")
                    self._thread.start()
            self._wake.set()
        except Exception:
            pass

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"sent": self.sent, "dropped": self.dropped, "pending": len(self._records),
                    "failures": self.failures, "last_problem": self.last_problem,
                    "kernel": self.kernel}

    # -- the sender's thread --------------------------------------------------------------
    def _batch(self) -> tuple[bytes, int, int]:
        """The body of the next post: the oldest records that fit; (body, count, last seq)."""
        with self._lock:
            records = list(self._records)[:self.batch_records]
            dropped = self.dropped
        envelope = json.dumps({"type": "executions", "user": self.user, "kernel": self.kernel,
                               "dropped": dropped,
                               "timestamp": datetime.now(UTC).isoformat(),
                               "executions": []}, separators=(",", ":")).encode()
        parts: list[bytes] = []
        size = len(envelope)
        for record in records:
            part = json.dumps(record, separators=(",", ":")).encode()
            if parts and size + len(part) + 1 > self.batch_bytes:
                break
            parts.append(part)
            size += len(part) + 1
        if not parts:
            return b"", 0, 0
        body = envelope[:-2] + b",".join(parts) + b"]}"  # into the empty list
        return body, len(parts), records[len(parts) - 1]["seq"]

    def _forget_through(self, seq: int, refused: bool = False) -> None:
        with self._lock:
            gone = 0
            while self._records and self._records[0]["seq"] <= seq:
                self._records.popleft()
                gone += 1
            if refused:
                self.dropped += gone
            else:
                self.sent += gone

    def _pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when the sender is being stopped."""
        return not self._stop.wait(max(0.0, seconds))

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self._wake.wait()
            if not self._pause(self._last_post + self.interval - time.monotonic()):
                return
            try:
                backoff = self._deliver_once(backoff)
            except Exception as e:  # never let the thread die: the next cell tries again
                self.last_problem = f"{type(e).__name__}: {e}"[:200]
                if not self._pause(backoff):
                    return
            with self._lock:
                if not self._records:
                    self._wake.clear()

    def _deliver_once(self, backoff: float) -> float:
        body, count, last = self._batch()
        if not count:
            return backoff
        answer = self._post(body, self.timeout)
        self._last_post = time.monotonic()
        if 200 <= answer.status < 300:
            self._forget_through(last)
            return 1.0
        if answer.status == 429:  # our own rate: wait as told, keep the records
            self.last_problem = "rate limited"
            self._pause(answer.retry_after or self.interval)
            return backoff
        if 400 <= answer.status < 500 and answer.status not in (401, 408):
            # The dashboard refused these very records (too big, invalid): sending them
            # again would block every later one. They count as dropped.
            self._forget_through(last, refused=True)
            self.last_problem = f"refused ({answer.status}): {answer.reason}"
            return backoff
        # Away, restarting, or the hub cannot check the token right now (401 included: a
        # hub that restarts forgets nothing, but answers oddly for a moment).
        self.failures += 1
        self.last_problem = f"dashboard unavailable ({answer.status or answer.reason})"
        self._pause(backoff)
        return min(backoff * 2, self.max_backoff)

    def flush(self, timeout: float = 1.0) -> None:
        """Try to deliver what is buffered within `timeout` (at the kernel's exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body, count, last = self._batch()
            if not count:
                return
            answer = self._post(body, max(0.1, deadline - time.monotonic()))
            if not 200 <= answer.status < 300:
                return
            self._forget_through(last)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
