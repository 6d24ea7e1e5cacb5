"""The event models and their SQLite store."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import pytest
from pydantic import Field

from dashboard import events
from dashboard.events import (
    CLIENT_CLOCK_AHEAD,
    CLIENT_CLOCK_BEHIND,
    EventBase,
    EventStore,
    HomePath,
    InvalidEvent,
    SaveNotebook,
    StoreFull,
    event_type,
    parse_event,
    stored_fields,
)


def save(user: str = "alice", path: str = "day1/intro.ipynb", **fields) -> SaveNotebook:
    event = parse_event({"type": "save-notebook", "user": user, "path": path, **fields})
    assert isinstance(event, SaveNotebook)
    return event


def ago(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat()


def test_filename_defaults_to_the_path_and_must_match_it():
    assert save().filename == "intro.ipynb"
    assert save(filename="intro.ipynb").filename == "intro.ipynb"
    with pytest.raises(InvalidEvent, match="filename must be the last part of path"):
        save(filename="other.ipynb")


def test_client_clock_is_kept_when_near_now_and_dropped_otherwise():
    near = save(timestamp=ago(timedelta(seconds=30)))
    assert near.client_timestamp is not None and near.client_timestamp.tzinfo is UTC
    # A naive reading is taken as UTC; an offset is normalised.
    naive = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    assert save(timestamp=naive.isoformat()).client_timestamp == naive.replace(tzinfo=UTC)
    east = datetime.now(timezone(timedelta(hours=5)))
    kept = save(timestamp=east.isoformat()).client_timestamp
    assert kept == east and kept.utcoffset() == timedelta(0)
    for far in (ago(CLIENT_CLOCK_BEHIND + timedelta(minutes=1)),
                ago(-CLIENT_CLOCK_AHEAD - timedelta(minutes=1)),
                "1999-01-01T00:00:00+00:00",
                "9999-12-31T23:59:59-05:00",  # would overflow if converted to UTC
                "0001-01-01T00:00:00+05:00"):
        assert save(timestamp=far).client_timestamp is None, far


@pytest.mark.parametrize(("body", "where"), [
    ({"type": "save-notebook", "user": "alice"}, "path"),
    ({"type": "save-notebook", "path": "a.ipynb"}, "user"),
    ({"type": "Save Notebook!", "user": "a", "path": "a.ipynb"}, "type: must be one of"),
    ({"user": "a", "path": "a.ipynb"}, "type: must be one of"),
    ({"type": ["save-notebook"], "user": "a", "path": "a.ipynb"}, "type: must be one of"),
    ({"type": "save-notebook", "user": "a", "path": "/etc/passwd.ipynb"}, "path"),
    ({"type": "save-notebook", "user": "a", "path": "x/../../b.ipynb"}, "path"),
    ({"type": "save-notebook", "user": "a", "path": "notes.txt"}, ".ipynb"),
    ({"type": "save-notebook", "user": "a", "path": "a\x00.ipynb"}, "control characters"),
    ({"type": "save-notebook", "user": "a", "path": "\ud800.ipynb"},
     "path: Input should be a valid string"),
    ({"type": "save-notebook", "user": "a", "path": "a.ipynb", "timestamp": "soon"},
     "timestamp"),
    # Unknown fields are refused, the dashboard's own ones included.
    ({"type": "save-notebook", "user": "a", "path": "a.ipynb", "id": 7}, "id: Extra"),
    ({"type": "save-notebook", "user": "a", "path": "a.ipynb", "cells": 3}, "cells: Extra"),
    ({"type": "save-notebook", "user": "a", "path": "a.ipynb", "client_timestamp": "x"},
     "client_timestamp: Extra"),
    ({"type": "save-notebook", "user": "a", "path": "a.ipynb", "user\x1b[2J": 1}, "\\x1b"),
    ([1, 2], "expected a JSON object"),
])
def test_invalid_events_are_described_readably(body, where):
    with pytest.raises(InvalidEvent) as e:
        parse_event(body)
    assert where in str(e.value)


def test_upsert_keeps_id_and_sets_the_time_itself(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    t1 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    first = store.upsert(save(), received=t1)
    other = store.upsert(save(user="bob"))
    again = store.upsert(save(timestamp=ago(timedelta(seconds=5))), received=t1 + timedelta(1))
    assert again["id"] == first["id"] != other["id"]
    assert store.count() == 2
    [row] = store.query({"user": "alice"})
    assert row == again
    assert row["timestamp"] == "2026-11-23T10:00:00+00:00"
    assert row["client_timestamp"].endswith("+00:00")
    assert set(row) <= stored_fields()


def test_query_filters_on_known_fields_only(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    a = store.upsert(save())
    store.upsert(save(user="bob", path="day2/x.ipynb"))
    assert [e["id"] for e in store.query({"filename": "intro.ipynb"})] == [a["id"]]
    assert [e["id"] for e in store.query({"id": str(a["id"])})] == [a["id"]]
    assert store.query({"filename": "x.ipynb", "user": "alice"}) == []
    assert len(store.query()) == 2
    for name in ("x') OR 1=1 --", "cells", "data"):
        with pytest.raises(ValueError, match="cannot filter on"):
            store.query({name: "1"})


def test_rows_of_older_versions_show_known_fields_and_their_real_id(tmp_path):
    # Before fields were checked, a posted "id" replaced the real one in listings and any
    # field of any size was kept: such rows are cut down when read.
    store = EventStore(tmp_path / "events.sqlite")
    stored = store.upsert(save())
    db = sqlite3.connect(tmp_path / "events.sqlite")
    junk = {**stored, "id": 999, "blob": "x" * 1000}
    db.execute("UPDATE events SET data = ?", (json.dumps(junk),))
    db.commit()
    assert store.query() == [stored]


def test_a_participant_keeps_at_most_max_per_user_events_of_a_type(tmp_path):
    store = EventStore(tmp_path / "events.sqlite", max_per_user=3)
    for n in range(3):
        store.upsert(save(path=f"n{n}.ipynb"))
    with pytest.raises(StoreFull, match="alice already has 3 save-notebook events"):
        store.upsert(save(path="n3.ipynb"))
    store.upsert(save(path="n0.ipynb"))  # a known notebook still updates
    store.upsert(save(user="bob", path="n3.ipynb"))  # others are not affected
    assert store.count() == 4


def test_events_persist_across_reopen(tmp_path):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    stored = store.upsert(save())
    store.close()
    assert EventStore(path).query() == [stored]


def test_a_new_event_type_is_one_decorated_model(tmp_path, monkeypatch):
    # How the execution feed and help requests are to be added: nothing else changes.
    # Only the built-in type: the live view's own (executions, help) register on import.
    monkeypatch.setattr(events, "EVENT_MODELS", {"save-notebook": events.SaveNotebook})
    with pytest.raises(InvalidEvent, match="type: must be one of: save-notebook"):
        parse_event({"type": "help", "user": "alice", "path": "a.ipynb"})

    @event_type
    class Help(EventBase):
        type: Literal["help"]
        path: HomePath
        question: str = Field(max_length=200)

        def key(self) -> str:
            return self.path

    store = EventStore(tmp_path / "events.sqlite")
    stored = store.upsert(parse_event({"type": "help", "user": "alice", "path": "a.ipynb",
                                       "question": "why?"}))
    assert store.query({"question": "why?"}) == [stored]
    with pytest.raises(InvalidEvent, match="question"):
        parse_event({"type": "help", "user": "alice", "path": "a.ipynb", "question": 3})
