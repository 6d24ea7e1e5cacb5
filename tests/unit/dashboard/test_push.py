"""Push to everyone: the instructor's notebook in every home, never over a participant's
edits; written as the participant (here: as ourselves, root, in a temporary home)."""

from __future__ import annotations

import json
import os

import pytest

import dashboard.push as push_module
from dashboard import instructornb
from dashboard.instructornb import NAME, notebook
from dashboard.push import MAX_SOURCE_CHARS, PushStore
from workshop.materials import Ledger

from .livekit import (
    ALICE,
    TEACHER,
    live_of,
    own_account,
)

PUSH = "/services/dashboard/live/push"


def pushes(*sources: str) -> list[dict]:
    return [{"id": i + 1, "at": "2026-11-22T10:00:00+00:00", "author": "teacher",
             "kind": "markdown" if s.startswith("#") else "code", "source": s}
            for i, s in enumerate(sources)]


def deliver(user, content: bytes, ledger: Ledger) -> dict:
    return instructornb.deliver([user], content, ledger)[0]


def cells(path) -> list[str]:
    return [c["source"] for c in json.loads(path.read_text())["cells"][1:]]


@pytest.fixture
def alice(tmp_path):
    return own_account("alice", tmp_path / "home")


def test_created_then_replaced_while_unchanged(alice, tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    assert deliver(alice, notebook(pushes("a = 1")), ledger)["outcome"] == "created"
    assert cells(alice.home / NAME) == ["a = 1"]
    report = deliver(alice, notebook(pushes("a = 1", "# Next")), ledger)
    assert report["outcome"] == "replaced" and report["file"] == NAME
    nb = json.loads((alice.home / NAME).read_text())
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code", "markdown"]
    assert nb["cells"][2]["id"] == "push-2" and nb["nbformat"] == 4
    assert deliver(alice, notebook(pushes("a = 1", "# Next")), ledger)["outcome"] == \
        "unchanged"


def test_a_participants_edits_are_never_overwritten(alice, tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    deliver(alice, notebook(pushes("a = 1")), ledger)
    (alice.home / NAME).write_text("my own notes")  # they edited and saved it
    report = deliver(alice, notebook(pushes("a = 1", "b = 2")), ledger)
    assert report["outcome"] == "beside" and report["file"] == "instructor (updated).ipynb"
    assert (alice.home / NAME).read_text() == "my own notes"
    assert cells(alice.home / "instructor (updated).ipynb") == ["a = 1", "b = 2"]
    # The next push replaces our new file while it stays unchanged.
    report = deliver(alice, notebook(pushes("a = 1", "b = 2", "c = 3")), ledger)
    assert report["outcome"] == "replaced" and report["file"] == "instructor (updated).ipynb"
    assert (alice.home / NAME).read_text() == "my own notes"


def test_a_file_of_theirs_at_the_name_and_a_planted_symlink_stay(alice, tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    (alice.home / NAME).write_text("theirs from the start")
    report = deliver(alice, notebook(pushes("x")), ledger)
    assert report["file"] == "instructor (updated).ipynb"
    assert (alice.home / NAME).read_text() == "theirs from the start"
    # A symlink to somewhere else where our file was: never followed, never written to.
    target = tmp_path / "elsewhere.txt"
    target.write_text("do not touch")
    os.unlink(alice.home / "instructor (updated).ipynb")
    os.symlink(target, alice.home / "instructor (updated).ipynb")
    report = deliver(alice, notebook(pushes("x", "y")), ledger)
    assert target.read_text() == "do not touch"
    assert report["file"] == "instructor (updated 2).ipynb"
    # A deleted file is simply delivered again.
    os.unlink(alice.home / "instructor (updated 2).ipynb")
    assert deliver(alice, notebook(pushes("x", "y")), ledger)["outcome"] == "created"


def test_pushing_from_the_board_reaches_every_home(client, live_app, tmp_path):
    r = client.post(PUSH, json={"kind": "code", "source": "print('hi')\r\n"}, headers=TEACHER)
    assert r.status_code == 202 and r.json["id"] == 1
    live = live_of(live_app)
    reports = live.pusher.deliver_all()  # what the delivery thread does
    assert sorted(rep["user"] for rep in reports) == ["alice", "bob"]  # not the teacher
    assert cells(tmp_path / "home" / "bob" / NAME) == ["print('hi')\n"]
    listing = client.get(f"{PUSH.rsplit('/', 1)[0]}/api/push", headers=TEACHER).json
    assert listing["version"] == 1 and listing["deliveries"]["alice"]["outcome"] == "created"
    assert live.pusher.deliver_all() == []  # nothing new: nobody is written to


def test_a_failed_delivery_is_retried_and_others_still_get_theirs(client, live_app, tmp_path,
                                                                  monkeypatch):
    (tmp_path / "home" / "alice").mkdir(parents=True)
    (tmp_path / "home" / "alice" / NAME).mkdir()  # a folder where the file would go
    real = push_module.ensure_system_user
    monkeypatch.setattr(push_module, "ensure_system_user", lambda name, root: (
        (_ for _ in ()).throw(OSError("no such account")) if name == "bob" else
        real(name, root)))
    client.post(PUSH, json={"kind": "markdown", "source": "# Break"}, headers=TEACHER)
    live = live_of(live_app)
    reports = {r["user"]: r for r in live.pusher.deliver_all()}
    assert reports["bob"]["outcome"] == "failed" and "no such account" in reports["bob"]["error"]
    assert reports["alice"]["file"] == "instructor (updated).ipynb"
    monkeypatch.setattr(push_module, "ensure_system_user", real)
    assert [r["user"] for r in live.pusher.deliver_all()] == ["bob"]  # only the failed one
    assert cells(tmp_path / "home" / "bob" / NAME) == ["# Break"]


def test_a_writer_that_fails_fails_its_group_and_is_retried(client, live_app, monkeypatch):
    def broken(jobs, content):
        raise OSError("the writer stopped")

    client.post(PUSH, json={"kind": "code", "source": "x = 1"}, headers=TEACHER)
    live = live_of(live_app)
    with monkeypatch.context() as patched:
        patched.setattr(instructornb, "_run", broken)
        assert {r["outcome"] for r in live.pusher.deliver_all()} == {"failed"}
    assert {r["outcome"] for r in live.pusher.deliver_all()} == {"created"}


def test_a_class_is_written_by_one_helper(tmp_path):
    users = [own_account(f"p{i}", tmp_path / "home") for i in range(30)]
    reports = instructornb.deliver(users, notebook(pushes("a")), Ledger(tmp_path / "l"))
    assert [r["outcome"] for r in reports] == ["created"] * 30
    assert all((u.home / NAME).is_file() for u in users)


@pytest.mark.parametrize(("body", "status"), [
    ({"kind": "code", "source": ""}, 400),
    ({"kind": "code", "source": "   \n"}, 400),
    ({"kind": "raw", "source": "x"}, 400),
    ({"kind": ["code"], "source": "x"}, 400),
    ({"kind": "code", "source": 5}, 400),
    ({"kind": "code", "source": "a\x00b"}, 400),
    ({"kind": "code", "source": "x" * (MAX_SOURCE_CHARS + 1)}, 413),
])
def test_bad_pushes_are_readable_4xx(client, body, status):
    assert client.post(PUSH, json=body, headers=TEACHER).status_code == status


def test_participants_cannot_push_and_forms_need_their_token(client):
    assert client.post(PUSH, json={"kind": "code", "source": "import os"},
                       headers=ALICE).status_code == 403
    assert client.post(PUSH, json={"kind": "code", "source": "x"}).status_code == 401
    assert client.post(PUSH, data={"kind": "code", "source": "x"},
                       headers=TEACHER).status_code == 202  # a form works too


def test_pushes_survive_a_restart(tmp_path):
    store = PushStore(tmp_path / "push.sqlite")
    store.add("teacher", "code", "a")
    store.record(1, {"user": "alice", "outcome": "created", "file": NAME})
    again = PushStore(tmp_path / "push.sqlite")
    assert [p["source"] for p in again.all()] == ["a"]
    assert again.deliveries()["alice"]["version"] == 1
