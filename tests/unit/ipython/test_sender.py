"""The kernel's background sender (etc/ipython/workshop_feed/sender.py): batches, paces,
keeps records while the dashboard is away and counts what it had to drop."""

from __future__ import annotations

import json
import threading
import time

from etc.ipython.workshop_feed.sender import Sender
from etc.ipython.workshop_feed.transport import Answer
from tests.e2e.hubclient import within

from .fakedash import FakeDashboard


class Dashboard:
    """post() for a Sender: records bodies, answers with `status`."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.retry_after = 0.0
        self.bodies: list[dict] = []
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, body: bytes, timeout: float) -> Answer:
        with self.lock:
            if self.status:
                self.bodies.append(json.loads(body))
                self.times.append(time.monotonic())
                self.sizes.append(len(body))
            return Answer(self.status, None, self.retry_after, "test")

    def seqs(self) -> list[int]:
        with self.lock:
            return [e["seq"] for b in self.bodies for e in b["executions"]]


def rec(n: int = 0, size: int = 10) -> dict:
    return {"path": "a.ipynb", "ok": True, "error": None, "head": "x" * size, "n": n}


def test_a_lone_cell_goes_at_once_and_a_burst_is_batched():
    dash = Dashboard()
    sender = Sender("u", "t", "alice", post=dash, interval=0.3)
    started = time.monotonic()
    sender.add(rec())
    within(2, lambda: dash.seqs() == [1], "first record posted")
    assert dash.times[0] - started < 0.2  # not held back for a batch
    for i in range(20):
        sender.add(rec(i))
    within(3, lambda: dash.seqs() == list(range(1, 22)), "the burst delivered")
    assert len(dash.bodies) <= 3  # in one or two batches, not twenty posts
    gaps = [b - a for a, b in zip(dash.times, dash.times[1:], strict=False)]
    assert all(g >= 0.29 for g in gaps), gaps  # at most one post per interval
    body = dash.bodies[0]
    assert body["type"] == "executions" and body["user"] == "alice"
    assert body["kernel"] == sender.kernel and body["dropped"] == 0
    assert sender.stats()["sent"] == 21 and sender.stats()["pending"] == 0
    sender.stop()


def test_batches_stay_below_the_size_and_count_limits():
    dash = Dashboard()
    sender = Sender("u", "t", "alice", post=dash, interval=0.05, batch_bytes=4000,
                    batch_records=7)
    for i in range(100):
        sender.add(rec(i, size=200))
    within(5, lambda: len(dash.seqs()) == 100, "all delivered")
    assert max(dash.sizes) <= 4000
    assert max(len(b["executions"]) for b in dash.bodies) <= 7
    assert dash.seqs() == list(range(1, 101))  # in order, each once
    sender.stop()


def test_while_the_dashboard_is_away_records_wait_and_the_oldest_are_dropped_and_counted():
    dash = Dashboard(status=0)  # nobody answers
    sender = Sender("u", "t", "alice", post=dash, interval=0.05, buffer_limit=50,
                    max_backoff=0.2)
    started = time.monotonic()
    for i in range(80):
        sender.add(rec(i))
    assert time.monotonic() - started < 0.1  # adding never waits for the network
    within(3, lambda: sender.failures >= 2, "retries while away")
    stats = sender.stats()
    assert stats["dropped"] == 30 and stats["pending"] == 50 and stats["sent"] == 0
    dash.status = 201  # back
    within(3, lambda: len(dash.seqs()) == 50, "the kept records delivered")
    assert dash.seqs() == list(range(31, 81))  # the newest were kept
    assert dash.bodies[-1]["dropped"] == 30  # and the board is told what it missed
    sender.add(rec())
    within(3, lambda: dash.seqs()[-1] == 81, "new records flow again")
    sender.stop()


def test_records_the_dashboard_refuses_are_dropped_not_retried_forever():
    dash = Dashboard(status=400)
    sender = Sender("u", "t", "alice", post=dash, interval=0.05)
    for i in range(5):
        sender.add(rec(i))
    within(3, lambda: sender.stats()["pending"] == 0, "refused records let go")
    assert sender.stats()["dropped"] == 5 and "refused (400)" in sender.last_problem
    posts = len(dash.bodies)
    time.sleep(0.3)
    assert len(dash.bodies) == posts  # nothing more to send
    dash.status = 201
    sender.add(rec())
    within(3, lambda: dash.seqs()[-1] == 6, "the next record is sent")
    sender.stop()


def test_a_429_waits_as_told_and_keeps_the_records():
    dash = Dashboard(status=429)
    dash.retry_after = 4.0  # far apart from the checks below, on a busy machine too
    sender = Sender("u", "t", "alice", post=dash, interval=0.05)
    sender.add(rec())
    within(2, lambda: len(dash.bodies) == 1, "first attempt")
    time.sleep(1.0)
    assert len(dash.bodies) == 1  # waiting out Retry-After
    dash.status = 201
    within(8, lambda: len(dash.bodies) >= 2 and sender.stats()["sent"] == 1, "delivered")
    assert sender.stats()["dropped"] == 0
    sender.stop()


def test_over_http_with_the_participants_token():
    fake = FakeDashboard().start()
    try:
        sender = Sender(fake.url, "alice-token", "alice", interval=0.05)
        sender.add(rec())
        within(3, lambda: len(fake.executions()) == 1, "posted over HTTP")
        assert fake.tokens == ["token alice-token"]
        sender.flush()
        sender.stop()
    finally:
        fake.stop()


def test_flush_gives_up_quickly_without_a_dashboard():
    fake = FakeDashboard()  # never started: refused
    sender = Sender(fake.url, "t", "alice", interval=10)
    sender._records.append({**rec(), "seq": 1})  # buffered, thread not started
    started = time.monotonic()
    sender.flush(timeout=1.0)
    assert time.monotonic() - started < 1.5
