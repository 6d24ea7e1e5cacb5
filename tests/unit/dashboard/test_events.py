"""The event model and its SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dashboard.events import Event, EventStore, describe


def save(user: str = "alice", path: str = "day1/intro.ipynb", **extra) -> Event:
    return Event.model_validate({"type": "save-notebook", "user": user, "path": path, **extra})


def test_defaults_filename_and_timezone_aware_now():
    event = save()
    assert event.filename == "intro.ipynb"
    assert event.timestamp.tzinfo is not None
    assert abs((datetime.now(UTC) - event.timestamp).total_seconds()) < 5


def test_naive_timestamps_are_taken_as_utc_and_offsets_normalised():
    assert save(timestamp="2026-11-22T10:00:00").model_dump(mode="json")["timestamp"] == \
        "2026-11-22T10:00:00+00:00"
    assert save(timestamp="2026-11-22T10:00:00-05:00").timestamp.hour == 15


@pytest.mark.parametrize(("body", "where"), [
    ({"type": "save-notebook", "user": "alice"}, "path"),
    ({"type": "save-notebook", "path": "a.ipynb"}, "user"),
    ({"type": "Save Notebook!", "user": "a", "path": "a.ipynb"}, "type"),
    ({"type": "save-notebook", "user": "a", "path": "/etc/passwd.ipynb"}, "path"),
    ({"type": "save-notebook", "user": "a", "path": "x/../../b.ipynb"}, "path"),
    ({"type": "save-notebook", "user": "a", "path": "notes.txt"}, ".ipynb"),
    ({"type": "save-notebook", "user": "a", "path": "a.ipynb", "timestamp": "soon"},
     "timestamp"),
])
def test_invalid_events_are_described_readably(body, where):
    with pytest.raises(ValidationError) as e:
        Event.model_validate(body)
    assert where in describe(e.value)


def test_upsert_keeps_id_and_updates(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    first = store.upsert(save(timestamp="2026-11-22T10:00:00+00:00"))
    other = store.upsert(save(user="bob"))
    again = store.upsert(save(timestamp="2026-11-22T11:00:00+00:00", cells=3))
    assert again["id"] == first["id"] != other["id"]
    assert store.count() == 2
    [row] = store.query({"user": "alice"})
    assert row["timestamp"] == "2026-11-22T11:00:00+00:00" and row["cells"] == 3


def test_query_filters_on_any_field_and_rejects_bad_names(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    a = store.upsert(save(cells=3))
    store.upsert(save(user="bob", path="day2/x.ipynb"))
    assert [e["id"] for e in store.query({"cells": "3"})] == [a["id"]]
    assert [e["id"] for e in store.query({"id": str(a["id"])})] == [a["id"]]
    assert store.query({"filename": "x.ipynb", "user": "alice"}) == []
    assert len(store.query()) == 2
    with pytest.raises(ValueError, match="invalid field"):
        store.query({"x') OR 1=1 --": "1"})


def test_events_persist_across_reopen(tmp_path):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    stored = store.upsert(save())
    store.close()
    assert EventStore(path).query() == [stored]
