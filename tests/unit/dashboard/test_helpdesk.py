"""Help requests: asked with the participant's own token, a queue for instructors, and
nobody reads anybody else's."""

from __future__ import annotations

from dashboard.helpdesk import HelpDesk

from .livekit import (
    ALICE,
    BOB,
    EVENTS,
    TEACHER,
    board,
    execution,
    run,
)

MINE = "/services/dashboard/live/help/mine"
QUEUE = "/services/dashboard/live/api/help"


def ask(client, user: str, message: str, headers=None, **extra):
    headers = headers or {"alice": ALICE, "bob": BOB}[user]
    return client.post(EVENTS, json={"type": "help", "user": user, "message": message,
                                     **extra}, headers=headers)


def done(client, request_id, headers=TEACHER):
    return client.post(f"/services/dashboard/live/help/{request_id}/done", headers=headers)


def test_a_request_is_queued_with_the_last_error_and_the_participant_sees_their_place(client):
    run(client, "alice", execution("c4", ok=False, message="name 'df' is not defined"))
    assert ask(client, "alice", "my dataframe is gone", path="day1/lesson.ipynb").status_code \
        == 201
    assert ask(client, "bob", "what is a groupby?").status_code == 201
    queue = client.get(QUEUE, headers=TEACHER).json
    assert [(e["user"], e["position"]) for e in queue] == [("alice", 1), ("bob", 2)]
    assert queue[0]["last_error"]["message"] == "name 'df' is not defined"
    assert queue[0]["path"] == "day1/lesson.ipynb"
    mine = client.get(MINE, headers=BOB).json
    assert mine["open"]["position"] == 2 and mine["open"]["waiting"] == 2
    # Asking again changes the message and keeps the place.
    ask(client, "alice", "still gone")
    queue = client.get(QUEUE, headers=TEACHER).json
    assert queue[0]["user"] == "alice" and queue[0]["message"] == "still gone"
    assert board(client)["help"] == queue


def test_participants_read_only_their_own_requests(client):
    ask(client, "alice", "a secret problem")
    bobs = client.get(MINE, headers=BOB).json
    assert bobs == {"open": None, "recent": []}
    assert "secret" not in client.get(MINE, headers=BOB).get_data(as_text=True)
    assert client.get(QUEUE, headers=BOB).status_code == 403
    assert client.get(MINE).status_code == 401
    assert client.get(EVENTS, headers=BOB).status_code == 403


def test_nobody_asks_for_someone_else_or_closes_requests(client):
    r = ask(client, "bob", "help bob", headers=ALICE)
    assert r.status_code == 403
    ask(client, "alice", "mine")
    request_id = client.get(QUEUE, headers=TEACHER).json[0]["id"]
    assert done(client, request_id, headers=ALICE).status_code == 403
    assert client.get(QUEUE, headers=TEACHER).json[0]["status"] == "open"


def test_done_by_an_instructor_and_the_participant_sees_it(client):
    ask(client, "alice", "stuck")
    request_id = client.get(QUEUE, headers=TEACHER).json[0]["id"]
    r = done(client, request_id)
    assert r.status_code == 200 and r.json["status"] == "done"
    assert r.json["closed_by"] == "teacher"
    assert done(client, request_id).status_code == 200  # twice is fine
    assert client.get(QUEUE, headers=TEACHER).json == []
    mine = client.get(MINE, headers=ALICE).json
    assert mine["open"] is None and mine["recent"][0]["status"] == "done"
    # A new request after that is a new one, at the end of the queue.
    ask(client, "bob", "me too")
    ask(client, "alice", "again")
    assert [e["user"] for e in client.get(QUEUE, headers=TEACHER).json] == ["bob", "alice"]


def test_a_participant_withdraws_their_request(client):
    ask(client, "alice", "never mind")
    r = client.post(EVENTS, json={"type": "help", "user": "alice", "action": "cancel"},
                    headers=ALICE)
    assert r.status_code == 201
    assert client.get(QUEUE, headers=TEACHER).json == []
    assert client.get(MINE, headers=ALICE).json["recent"][0]["status"] == "cancelled"


def test_bad_requests_are_readable_4xx(client):
    assert ask(client, "alice", "").status_code == 400
    assert ask(client, "alice", "   ").status_code == 400
    assert ask(client, "alice", "x" * 501).status_code == 400
    assert ask(client, "alice", "bell\x07").status_code == 400
    assert ask(client, "alice", "hi", path="../bob/x.ipynb").status_code == 400
    assert ask(client, "alice", "hi", action="delete").status_code == 400
    for bad in ("abc", "9" * 30, "-1"):
        assert done(client, bad).status_code == 400
    assert done(client, "12345").status_code == 404
    # Without the form token, a cookie session cannot close requests.
    client.set_cookie("dash", "forged", domain="localhost")
    assert client.post("/services/dashboard/live/help/1/done").status_code in (401, 403)


def test_html_in_a_request_stays_text(client):
    ask(client, "alice", "<img src=x onerror=alert(1)></script>")
    page = client.get("/services/dashboard/live", headers=TEACHER).get_data(as_text=True)
    # In the page's JSON, < and > are escaped: the markup can never become elements, and
    # "</script>" cannot end the JSON's script tag early.
    assert "<img src=x" not in page and "\\u003c/script\\u003e" in page
    assert client.get(QUEUE, headers=TEACHER).json[0]["message"].startswith("<img")


def test_requests_survive_a_restart_and_history_is_bounded(tmp_path):
    desk = HelpDesk(tmp_path / "help.sqlite")
    desk.ask("alice", "first", None, None)
    desk.ask("bob", "second", None, {"name": "E", "message": "m"})
    again = HelpDesk(tmp_path / "help.sqlite")
    assert [(e["user"], e["position"]) for e in again.queue()] == [("alice", 1), ("bob", 2)]
    for i in range(150):
        again.ask("carol", f"q{i}", None, None)
        again.cancel("carol")
    assert len([e for e in again.history() if e["user"] == "carol"]) <= 100
