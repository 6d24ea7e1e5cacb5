"""Property-based tests of the events API: whatever a participant's kernel posts, the
answer is 201 or a readable 4xx (JSON with a message), never a 5xx, and what is stored
has only the fields the dashboard knows."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dashboard.events import stored_fields

from .dashapp import ACCESS, EVENTS, TEACHER, gate, make_app
from .dashapp import USERS as KNOWN

USER = "$USER"  # replaced by each example's own participant (a fresh one: no 429s)
NAMES = (f"p{n}" for n in itertools.count())


def anyone(token: str) -> dict[str, Any] | None:
    """Every "tok-NAME" is participant NAME; the table's tokens as usual."""
    if token.startswith("tok-"):
        return {"name": token.removeprefix("tok-"), "kind": "user", "scopes": [ACCESS]}
    return KNOWN.get(token)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("dashboard"), gate=gate(anyone))
    return app.test_client()


scalars = (st.none() | st.booleans() | st.text(max_size=20)
           | st.integers(min_value=-10**30, max_value=10**30)
           | st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12)
timestamps = st.datetimes(timezones=st.sampled_from(
    [None, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))])).map(
    lambda d: d.isoformat())
paths = st.sampled_from(["a.ipynb", "day1/intro.ipynb", "../x.ipynb", "/abs.ipynb",
                         "a.txt", "x/./y.ipynb", "ü/ñ.ipynb", "a\\b.ipynb"]) | st.text(max_size=40)
events = st.fixed_dictionaries(
    {"type": st.just("save-notebook") | st.text(max_size=15) | json_values,
     "user": st.just(USER) | st.text(max_size=10) | json_values,
     "path": paths | json_values},
    optional={"filename": st.text(max_size=20) | json_values,
              "timestamp": timestamps | json_values,
              "id": json_values, "client_timestamp": json_values,
              "extra": json_values, "cells": json_values})
mostly_valid = st.fixed_dictionaries(
    {"type": st.just("save-notebook"), "user": st.just(USER),
     "path": paths | st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=30)
     .map(lambda name: f"d/{name}.ipynb")},
    optional={"timestamp": timestamps})
with_unknown = st.tuples(events, st.dictionaries(st.text(max_size=12), json_values,
                                                 max_size=3)).map(lambda t: {**t[1], **t[0]})
HEAD = '{"type": "save-notebook", "user": "$USER", "path": "a.ipynb", "x": '
raw_bodies = (
    st.binary(max_size=200)
    | st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n)
    | st.integers(1, 20_000).map(lambda n: HEAD + '{"a":' * n + "1" + "}" * n + "}")
    | st.integers(19, 6_000).map(lambda n: HEAD + "9" * n + "}")
    | st.sampled_from([HEAD + "NaN}", HEAD + "-Infinity}", HEAD + "1e999}", "", " ",
                       "null", "[]", '"x"', HEAD + '"\\ud800"}', HEAD + "1"])
).map(lambda raw: raw if isinstance(raw, bytes) else raw.encode())
# Valid events twice as often as each kind of garbage: the stored side is checked too.
bodies = st.one_of(mostly_valid, mostly_valid, events, with_unknown, json_values, raw_bodies)


def encode(body: Any, user: str) -> bytes:
    """Raw bodies as they are, anything else as JSON; the placeholder becomes `user`."""
    if isinstance(body, bytes):
        return body.replace(USER.encode(), user.encode())
    text = json.dumps(body)  # NaN and Infinity as Python writes them: refused, too
    return text.replace(json.dumps(USER), json.dumps(user)).encode()


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_any_body_is_201_or_a_readable_4xx_and_stores_known_fields(client, body):
    user = next(NAMES)
    r = client.post(EVENTS, data=encode(body, user), content_type="application/json",
                    headers={"Authorization": f"token tok-{user}"})
    assert r.status_code == 201 or 400 <= r.status_code < 500, r.get_data(as_text=True)
    assert r.is_json
    event(f"status {r.status_code}")
    if r.status_code != 201:
        assert isinstance(r.json["message"], str) and r.json["status"] == r.status_code
        return
    assert set(r.json) <= stored_fields() and isinstance(r.json["id"], int)
    listed = client.get(EVENTS, query_string={"id": r.json["id"]}, headers=TEACHER).json
    assert listed == [r.json] and listed[0]["user"] == user


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=4))
def test_any_query_of_the_listing_is_200_or_a_readable_400(client, query):
    r = client.get(EVENTS, query_string=query, headers=TEACHER)
    assert r.status_code in (200, 400), r.get_data(as_text=True)
    if r.status_code == 200:
        assert all(set(e) <= stored_fields() for e in r.json)
    else:
        assert isinstance(r.json["message"], str)
