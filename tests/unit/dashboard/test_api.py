"""The events API's HTTP contract, with the hub's token check replaced by a table.

Everything else (Flask app, validation, store) is the real code; the end-to-end tests
run the same API behind the real hub.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.api import EVENT_BODY_MAX, EVENT_BURST
from dashboard.events import stored_fields

from .dashapp import ALICE, EVENTS, TEACHER, auth, make_app

EVENT = {"type": "save-notebook", "user": "alice", "path": "a.ipynb"}
URL = EVENTS


@pytest.fixture
def client(tmp_path):
    return make_app(tmp_path).test_client()


def post_raw(client, body: str | bytes, headers=ALICE):
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def test_post_201_with_id_and_the_dashboards_time(client):
    r = client.post(URL, json={**EVENT, "timestamp": "2001-01-01T00:00:00+00:00"},
                    headers=ALICE)
    assert r.status_code == 201
    assert r.json["id"] >= 1 and r.json["filename"] == "a.ipynb"
    # The stored time is when the dashboard received it; a far-off client clock is dropped.
    received = datetime.fromisoformat(r.json["timestamp"])
    assert abs(received - datetime.now(UTC)) < timedelta(seconds=5)
    assert r.json["timestamp"].endswith("+00:00") and r.json["client_timestamp"] is None
    assert set(r.json) <= stored_fields()


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    (auth("unknown"), 401),
    (auth("no-access-token"), 401),
    ({"Authorization": "Basic YWxpY2U6cHc="}, 401),
    (auth("a" * 300), 401),  # not a token: never sent to the hub
])
def test_post_without_a_valid_token(client, headers, status):
    assert client.post(URL, json=EVENT, headers=headers).status_code == status


def test_post_as_someone_else_is_forbidden(client):
    r = client.post(URL, json={**EVENT, "user": "bob"}, headers=ALICE)
    assert r.status_code == 403 and "not 'bob'" in r.json["message"]


@pytest.mark.parametrize(("body", "text"), [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    ("", "expected a JSON object"),
    ('{"type": "save-notebook", "user": "alice"}', "path: Field required"),
    ('{"type": "nope", "user": "alice", "path": "a.ipynb"}', "type: must be one of"),
    (b'{"type": "save-notebook", "user": "\xff"}', "not UTF-8"),
])
def test_bad_bodies_are_400_with_a_message(client, body, text):
    r = post_raw(client, body)
    assert r.status_code == 400
    assert text in r.json["message"]


def test_deep_nesting_and_huge_numbers_are_400_not_500(client):
    # Before: RecursionError and "Exceeds the limit (4300 digits)" became 500s.
    head = '{"type": "save-notebook", "user": "alice", "path": "a.ipynb", "x": '
    deep = head + "[" * 30000 + "]" * 30000 + "}"
    huge = head + "9" * 5000 + "}"
    for body, text in ((deep, "nested more than"), (huge, "more than 18 digits"),
                       (head + "1e999}", "too large"), (head + "NaN}", "NaN")):
        r = post_raw(client, body)
        assert r.status_code == 400 and text in r.json["message"], r.json


def test_unknown_fields_are_refused_and_the_id_is_the_dashboards(client):
    # Before: {"id": 999} replaced the real id in listings, and 50 events with a 200 KB
    # extra field each added 11 MB to the database.
    r = client.post(URL, json={**EVENT, "id": 999}, headers=ALICE)
    assert r.status_code == 400 and "id: Extra inputs are not permitted" in r.json["message"]
    r = client.post(URL, json={**EVENT, "notes": "x" * 60_000}, headers=ALICE)
    assert r.status_code == 400 and "notes" in r.json["message"]
    r = client.post(URL, json={**EVENT, "notes": "x" * 200_000}, headers=ALICE)
    assert r.status_code == 413
    stored = client.post(URL, json=EVENT, headers=ALICE).json
    assert [e["id"] for e in client.get(URL, headers=TEACHER).json] == [stored["id"]]


def test_body_cap_is_the_events_own(client):
    filler = "x" * (EVENT_BODY_MAX - 100)
    r = post_raw(client, json.dumps({**EVENT, "path": "a.ipynb", "pad": filler}))
    assert r.status_code == 400  # read (under the cap) and refused for its field
    r = post_raw(client, "x" * (EVENT_BODY_MAX + 1))
    assert r.status_code == 413 and r.json["status"] == 413


def test_a_participant_posting_in_a_loop_gets_429_with_retry_after(client):
    for _ in range(EVENT_BURST):
        assert client.post(URL, json=EVENT, headers=ALICE).status_code == 201
    r = client.post(URL, json=EVENT, headers=ALICE)
    assert r.status_code == 429 and "too many events from alice" in r.json["message"]
    assert r.headers["Retry-After"] == "1"
    # Bad bodies count too (a loop of them costs as much to refuse), and others post on.
    assert post_raw(client, "{").status_code == 429
    bob = client.post(URL, json={**EVENT, "user": "bob"}, headers=auth("bob-token"))
    assert bob.status_code == 201


def test_get_is_for_instructors_and_filters(client):
    client.post(URL, json=EVENT, headers=ALICE)
    client.post(URL, json={**EVENT, "path": "b.ipynb"}, headers=ALICE)
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=ALICE).status_code == 403
    r = client.get(URL, query_string={"path": "b.ipynb"}, headers=TEACHER)
    assert r.status_code == 200 and [e["path"] for e in r.json] == ["b.ipynb"]
    r = client.get(URL + "?user=a&user=b", headers=TEACHER)
    assert r.status_code == 400
    r = client.get(URL + "?cells=3", headers=TEACHER)
    assert r.status_code == 400 and "cannot filter on 'cells'" in r.json["message"]


def test_errors_are_json_or_the_error_page_and_keep_their_headers(client):
    r = client.get("/services/dashboard/nope")
    assert r.status_code == 404 and r.json["status"] == 404
    r = client.put(URL, headers=ALICE)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}
    r = client.get(URL + "?cells=3", headers={**TEACHER, "Accept": "text/html"})
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "cannot filter on" in r.get_data(as_text=True)


def test_other_json_routes_parse_with_the_same_bounds(client):
    # people.py's POST /users reads request.get_json(): the app's JSON provider is
    # safejson, so a deep body is Flask's 400 there too, not a RecursionError.
    r = client.post("/services/dashboard/users", data="[" * 50000, headers=TEACHER,
                    content_type="application/json")
    assert r.status_code == 400
