"""The board: one JSON document for the class, streamed (a few at a time) or polled, the
progress chart, the exports."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import UTC, datetime

import pytest

from dashboard.chart import progress_svg
from dashboard.export import cell
from dashboard.stream import MAX_STREAMS, Changes, Slots, Stream

from .livekit import (
    ALICE,
    LESSON,
    TEACHER,
    board,
    execution,
    live_of,
    run,
    tile,
)

LIVE = "/services/dashboard/live"




def test_the_board_says_where_everyone_is(client):
    run(client, "alice", execution("c1"), execution("c2"), execution("c4", ok=False))
    run(client, "bob", execution("c1"))
    data = board(client)
    assert data["lesson"]["path"] == LESSON and len(data["lesson"]["exercises"]) == 5
    alice, bob = tile(data, "alice"), tile(data, "bob")
    assert alice["exercise"] == 2 and alice["current"] == 2
    assert alice["states"] == ["ok", "ok", "error", "", ""]
    assert bob["exercise"] == 0 and bob["last"]["head"] == "import pandas as pd"
    assert data["histogram"] == [1, 0, 1, 0, 0] and data["not_started"] == 0
    assert [p["name"] for p in data["participants"]] == ["alice", "bob"]  # no instructor
    assert data["thresholds"] == {"stuck_error": 3, "behind": 5}


def test_only_instructors_see_the_board(client):
    for path in ("/api/board", "/stream", "/chart.svg", "/export.csv", "/export.json",
                 "/api/stats", "/api/push"):
        assert client.get(LIVE + path, headers=ALICE).status_code == 403, path
        assert client.get(LIVE + path).status_code == 401, path
    assert client.get(LIVE, headers=ALICE).status_code == 403


def test_the_page_has_no_inline_script_and_polling_returns_little_when_nothing_changed(client):
    r = client.get(LIVE, headers=TEACHER)
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    html = r.get_data(as_text=True)
    assert 'src="/services/dashboard/static/javascripts/live.js"' in html
    assert html.count("<script") == html.count('<script src=') + html.count(
        "<script defer src=") + html.count('<script type="application/json"')
    first = board(client)
    again = board(client, since=first["version"])
    assert again == {"version": first["version"]}
    run(client, "alice", execution("c1"))
    assert "participants" in board(client, since=first["version"])


@pytest.mark.parametrize("query", [{"stuck_error": "0"}, {"behind": "241"},
                                   {"behind": "²"}, {"stuck_error": "1e3"}])
def test_thresholds_are_checked(client, query):
    r = client.get(f"{LIVE}/api/board", query_string=query, headers=TEACHER)
    assert r.status_code == 400 and "minutes" in r.json["message"]


def test_a_stream_sends_the_board_and_each_change():
    changes = Changes()
    slots = Slots(1)
    assert slots.take()
    stream = Stream(slots, changes, lambda: str(changes.version),
                    lambda: {"n": changes.version}, seconds=2, keepalive=0.2, coalesce=0)
    events: list[bytes] = []

    def read() -> None:
        for chunk in stream:
            events.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.1)
    changes.bump()
    time.sleep(0.5)
    stream.close()
    reader.join(3)
    text = b"".join(events).decode()
    assert text.startswith("retry:")
    boards = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert boards[:2] == [{"n": 0}, {"n": 1}]
    assert ": keepalive" in text  # a quiet stream still says something
    assert slots.take()  # close() gave the slot back


def test_streams_are_bounded_and_a_refused_page_is_told_to_poll(client, live_app):
    opened = [client.get(f"{LIVE}/stream", headers=TEACHER, buffered=False)
              for _ in range(MAX_STREAMS)]
    assert all(r.status_code == 200 for r in opened)
    assert opened[0].headers["Content-Type"].startswith("text/event-stream")
    refused = client.get(f"{LIVE}/stream", headers=TEACHER)
    assert refused.status_code == 429 and "polls" in refused.json["message"]
    assert refused.headers["Retry-After"] == "60"
    for r in opened:
        r.close()  # the page went away: its slot is free again
    again = client.get(f"{LIVE}/stream", headers=TEACHER, buffered=False)
    assert again.status_code == 200
    first = next(again.response)
    assert first.startswith(b"retry:")
    board_event = next(again.response)
    assert board_event.startswith(b"event: board\ndata: {")
    again.close()


def test_a_stream_never_started_still_gives_its_slot_back():
    slots = Slots(1)
    assert slots.take()
    Stream(slots, Changes(), lambda: "v", dict).close()  # the client left before a byte
    assert slots.take()


def test_the_chart_is_an_svg_with_escaped_titles(client):
    run(client, "alice", execution("c1"), execution("c6"))
    r = client.get(f"{LIVE}/chart.svg", headers=TEACHER)
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert r.get_data(as_text=True).startswith("<svg")
    svg = progress_svg({}, 3, ["<script>alert(1)</script>"], datetime.now(UTC))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert progress_svg({}, 0, [], datetime.now(UTC)).startswith("<svg")


def test_the_csv_export_has_every_execution_and_no_formulas(client):
    run(client, "alice", execution("c1"), execution("c4", ok=False, error="ValueError",
                                                     message="=HYPERLINK(\"http://x\")"))
    r = client.get(f"{LIVE}/export.csv", headers=TEACHER)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [(x["participant"], x["exercise"], x["ok"]) for x in rows] == [
        ("alice", "1", "ok"), ("alice", "3", "error")]
    assert rows[1]["error_message"].startswith("'=HYPERLINK")
    assert rows[1]["exercise_title"] == "Exercise 2: select"
    assert cell("-1") == "'-1" and cell(-1) == -1 and cell("ok") == "ok"


def test_the_json_export_per_participant(client, live_app):
    run(client, "alice", execution("c1"), execution("c6", ok=False))
    client.post("/services/dashboard/events", headers=ALICE,
                json={"type": "help", "user": "alice", "message": "plot?"})
    r = client.get(f"{LIVE}/export.json", headers=TEACHER)
    data = json.loads(r.get_data(as_text=True))
    assert set(data["lessons"]) == {LESSON}
    alice = next(p for p in data["participants"] if p["name"] == "alice")
    assert alice["executions"] == 2 and alice["errors"] == 1
    assert alice["lessons"][LESSON]["furthest"] == 4 and alice["lessons"][LESSON]["of"] == 5
    assert [t["exercise"] for t in alice["timeline"]] == [1, 4]
    assert alice["help"][0]["message"] == "plot?"
    bob = next(p for p in data["participants"] if p["name"] == "bob")
    assert bob["executions"] == 0 and bob["timeline"] == []
    assert live_of(live_app).feed.count() == 2
