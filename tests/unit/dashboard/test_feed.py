"""The execution feed through the real events API: stored once, shown on the board, and
everything a participant could try refused with a readable 4xx."""

from __future__ import annotations

import json

import pytest

from dashboard.api import EVENT_BODY_MAX, EVENT_BURST
from dashboard.feed import MAX_BATCH
from dashboard.feedstore import FeedStore

from .dashapp import make_app
from .livekit import (
    ALICE,
    EVENTS,
    batch,
    board,
    execution,
    live_of,
    run,
    tile,
)


def test_a_batch_is_stored_and_the_error_is_on_the_board_at_once(client, live_app):
    r = run(client, "alice", execution("c1"), execution("c2", ok=False))
    assert r.status_code == 201, r.json
    alice = tile(board(client), "alice")
    assert alice["last"]["ok"] is False
    assert alice["last"]["error"] == {"name": "NameError", "message": "name 'x' is not defined"}
    assert alice["executions"] == 2 and alice["errors"] == 1
    assert live_of(live_app).feed.count() == 2


def test_a_batch_posted_twice_is_stored_once(client, live_app):
    same = batch("alice", execution("c1", seq=1), execution("c2", seq=2))
    for _ in range(3):  # the kernel lost the answer and tries again
        assert client.post(EVENTS, json=same, headers=ALICE).status_code == 201
    partly_new = batch("alice", execution("c2", seq=2), execution("c3", seq=3))
    assert client.post(EVENTS, json=partly_new, headers=ALICE).status_code == 201
    assert live_of(live_app).feed.count() == 3
    assert tile(board(client), "alice")["executions"] == 3
    # Another kernel of hers counts from 1 again: not a duplicate.
    assert run(client, "alice", execution("c4", seq=1), kernel="k2").status_code == 201
    assert live_of(live_app).feed.count() == 4


def test_nobody_posts_executions_for_someone_else(client, live_app):
    r = run(client, "bob", execution("c1"), headers=ALICE)
    assert r.status_code == 403 and "alice" in r.json["message"]
    assert live_of(live_app).feed.count() == 0
    assert tile(board(client), "bob")["last"] is None
    assert run(client, "alice", execution("c1"), headers={}).status_code == 401


@pytest.mark.parametrize(("change", "where"), [
    ({"ok": True, "error": {"name": "X", "message": "y"}}, "ok must be true exactly"),
    ({"ok": False, "error": None}, "ok must be true exactly"),
    ({"ok": "true"}, "ok"),
    ({"seq": "5"}, "seq"),
    ({"seq": 0}, "seq"),
    ({"count": 1.5}, "count"),
    ({"duration": "fast"}, "duration"),
    ({"duration": -1}, "duration"),
    ({"head": "a\x1b[31mred"}, "control characters"),
    ({"head": "1\n2\n3\n4\n5\n6"}, "at most 5 lines"),
    ({"head": "x" * 401}, "head"),
    ({"cell": "<script>"}, "cell"),
    ({"cell": "x" * 65}, "cell"),
    ({"path": "../bob/secret.ipynb"}, "path"),
    ({"path": "/etc/passwd"}, "path"),
    ({"source_hash": "not-hex"}, "source_hash"),
    ({"error": {"name": "E", "message": "m" * 501}, "ok": False}, "message"),
    ({"error": {"name": "", "message": "m"}, "ok": False}, "name"),
    ({"html": "<b>"}, "Extra inputs"),
])
def test_bad_executions_get_a_readable_400(client, change, where):
    r = run(client, "alice", {**execution("c1"), **change})
    assert r.status_code == 400, r.json
    assert where in r.json["message"]


@pytest.mark.parametrize(("body", "where"), [
    ({"kernel": "../k"}, "kernel"),
    ({"kernel": ""}, "kernel"),
    ({"dropped": -1}, "dropped"),
    ({"dropped": "3"}, "dropped"),
    ({"executions": []}, "executions"),
    ({"executions": "many"}, "executions"),
])
def test_bad_batches_get_a_readable_400(client, body, where):
    r = client.post(EVENTS, json={**batch("alice", execution("c1")), **body}, headers=ALICE)
    assert r.status_code == 400 and where in r.json["message"]


def test_limits_of_a_batch(client):
    too_many = [execution("c1", seq=i + 1) for i in range(MAX_BATCH + 1)]
    r = run(client, "alice", *too_many)
    assert r.status_code in (400, 413)
    same_seq = run(client, "alice", execution("c1", seq=9), execution("c2", seq=9))
    assert same_seq.status_code == 400 and "own seq" in same_seq.json["message"]
    huge = json.dumps(batch("alice", execution("c1", source="x" * (EVENT_BODY_MAX + 10))))
    r = client.post(EVENTS, data=huge, content_type="application/json", headers=ALICE)
    assert r.status_code == 413
    deep = '{"type": "executions", "user": "alice", "x": ' + "[" * 50 + "]" * 50 + "}"
    r = client.post(EVENTS, data=deep, content_type="application/json", headers=ALICE)
    assert r.status_code == 400 and "nested" in r.json["message"]


def test_a_flood_of_batches_is_rate_limited_with_everything_else(client):
    answers = [run(client, "alice", execution("c1")).status_code
               for _ in range(EVENT_BURST + 5)]
    assert answers.count(201) == EVENT_BURST and answers[-1] == 429


def test_nothing_is_lost_across_a_restart(tmp_path, monkeypatch):
    from .livekit import write_lesson
    monkeypatch.setenv("WORKSHOP_USERS_SYNC_STATUS", str(tmp_path / "sync.json"))
    write_lesson(tmp_path / "materials")
    first = make_app(tmp_path).test_client()
    run(first, "alice", execution("c1"), execution("c4", ok=False), dropped=7)
    before = tile(board(first), "alice")
    second = make_app(tmp_path).test_client()  # a restarted dashboard, the same state dir
    after = tile(board(second), "alice")
    assert after["last"] == before["last"] and after["exercise"] == before["exercise"] == 2
    assert after["dropped"] == 7 and after["executions"] == 2


def test_the_store_keeps_a_participants_newest_executions(tmp_path):
    store = FeedStore(tmp_path / "feed.sqlite", max_per_user=100)
    for start in range(0, 1000, 50):
        store.add(batch("alice", *(execution("c1", seq=start + i + 1) for i in range(50))))
    store.add(batch("bob", execution("c1", seq=1)))
    rows = list(store.rows(user="alice"))
    assert 100 <= len(rows) <= 100 + 500 and rows[-1]["seq"] == 1000
    assert len(list(store.rows(user="bob"))) == 1  # nobody else's rows go
    assert store.count() == len(rows) + 1
