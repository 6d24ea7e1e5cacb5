"""The events API's HTTP contract, with the hub's token check replaced by a table.

Everything else (Flask app, validation, store) is the real code; the end-to-end tests
run the same API behind the real hub.
"""

from __future__ import annotations

import pytest

from dashboard.app import create_app
from dashboard.auth import AuthGate
from dashboard.settings import INSTRUCTOR_SCOPE, Settings

ACCESS = "access:services!service=dashboard"
USERS = {
    "alice-token": {"name": "alice", "kind": "user", "scopes": [ACCESS]},
    "teacher-token": {"name": "teacher", "kind": "user", "scopes": [ACCESS, INSTRUCTOR_SCOPE]},
    "no-access-token": {"name": "mallory", "kind": "user", "scopes": []},
}


@pytest.fixture
def client(tmp_path):
    settings = Settings(prefix="/services/dashboard/", state_dir=tmp_path / "state",
                        output_dir=tmp_path / "out")
    gate = AuthGate(USERS.get, access_scopes={ACCESS}, instructor_scope=INSTRUCTOR_SCOPE,
                    cookie_name="dash", cookie_path="/services/dashboard/", secret=b"s" * 32)
    return create_app(settings, gate=gate, start_worker=False).test_client()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


EVENT = {"type": "save-notebook", "user": "alice", "path": "a.ipynb"}
URL = "/services/dashboard/events"


def test_post_201_with_id_and_timestamp(client):
    r = client.post(URL, json=EVENT, headers=auth("alice-token"))
    assert r.status_code == 201
    assert r.json["id"] >= 1 and r.json["timestamp"].endswith("+00:00")
    assert r.json["filename"] == "a.ipynb"


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    (auth("unknown"), 401),
    (auth("no-access-token"), 401),
    ({"Authorization": "Basic YWxpY2U6cHc="}, 401),
])
def test_post_without_a_valid_token(client, headers, status):
    assert client.post(URL, json=EVENT, headers=headers).status_code == status


def test_post_as_someone_else_is_forbidden(client):
    r = client.post(URL, json={**EVENT, "user": "bob"}, headers=auth("alice-token"))
    assert r.status_code == 403 and "not 'bob'" in r.json["message"]


@pytest.mark.parametrize(("body", "text"), [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    ("", "expected a JSON object"),
    ('{"type": "save-notebook", "user": "alice"}', "path: Field required"),
])
def test_bad_bodies_are_400_with_a_message(client, body, text):
    r = client.post(URL, data=body, content_type="application/json",
                    headers=auth("alice-token"))
    assert r.status_code == 400
    assert text in r.json["message"]


def test_get_is_for_instructors_and_filters(client):
    client.post(URL, json=EVENT, headers=auth("alice-token"))
    client.post(URL, json={**EVENT, "path": "b.ipynb"}, headers=auth("alice-token"))
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=auth("alice-token")).status_code == 403
    r = client.get(URL, query_string={"path": "b.ipynb"}, headers=auth("teacher-token"))
    assert r.status_code == 200 and [e["path"] for e in r.json] == ["b.ipynb"]
    r = client.get(URL + "?user=a&user=b", headers=auth("teacher-token"))
    assert r.status_code == 400


def test_errors_are_json_and_oversized_bodies_refused(client):
    r = client.get("/services/dashboard/nope")
    assert r.status_code == 404 and r.json["status"] == 404
    r = client.post(URL, data="x" * (300 * 1024), content_type="application/json",
                    headers=auth("alice-token"))
    assert r.status_code == 413
