"""What users-sync changes in the hub for a given users.txt, and what it never does."""

from __future__ import annotations

import json

import pytest

from workshop import usersync
from workshop.accounts import in_range
from workshop.hubapi import HubAPIError
from workshop.reserved import RESERVED_NAMES
from workshop.roster import RosterFile, parse
from workshop.usersync import INSTRUCTORS, PARTICIPANTS, UsersSync, plan

from .accounts_fixture import system_db


def test_new_removed_and_regrouped_users():
    roster = parse("alice:a\ncarol:c\n[instructors]\nbob:b\n")
    hub = {"alice", "bob", "dave"}
    members = {INSTRUCTORS: set(), PARTICIPANTS: {"alice", "bob", "dave"}}
    todo = plan(roster, hub, members)
    assert todo.create == ["carol"]
    assert todo.delete == ["dave"]
    assert todo.group_add == {INSTRUCTORS: ["bob"], PARTICIPANTS: ["carol"]}
    # dave leaves with his deletion; only bob changes group.
    assert todo.group_remove == {INSTRUCTORS: [], PARTICIPANTS: ["bob"]}


def test_nothing_to_do_when_in_step():
    roster = parse("alice:a\n[instructors]\nbob:b\n")
    todo = plan(roster, {"alice", "bob"}, {INSTRUCTORS: {"bob"}, PARTICIPANTS: {"alice"}})
    assert not todo


def test_broken_lines_do_not_remove_anyone_else():
    roster = parse("alice:a\nthis is broken\nbob:b\n")
    todo = plan(roster, {"alice", "bob"}, {PARTICIPANTS: {"alice", "bob"}})
    assert todo.delete == [] and not todo


# -- the service against a fake hub and a temporary /etc --------------------------------------
class FakeHub:
    """The hub's REST API as users-sync uses it; `refuse` names users it rejects."""

    def __init__(self, users: set[str] = frozenset(), refuse: set[str] = frozenset()) -> None:
        self.people = set(users)
        self.members: dict[str, set[str]] = {INSTRUCTORS: set(), PARTICIPANTS: set()}
        self.refuse = set(refuse)
        self.calls: list[tuple[str, str]] = []

    def users(self) -> dict[str, dict]:
        return {name: {"name": name} for name in self.people}

    def group_members(self, group: str) -> set[str]:
        return set(self.members[group])

    def request(self, method: str, path: str, *, ok=(), json=None):
        self.calls.append((method, path))
        kind, name, *_ = path.strip("/").split("/")
        targets = json["users"] if kind == "groups" else [name]
        if set(targets) & self.refuse:
            raise HubAPIError(method, path, 400, "refused by the fake hub")
        if kind == "users":
            (self.people.add if method == "POST" else self.people.discard)(name)
        else:
            group = self.members[name]
            (group.update if method == "POST" else group.difference_update)(targets)


@pytest.fixture
def sync(tmp_path):
    users = tmp_path / "users.txt"
    killed: list[int] = []
    shared_db = system_db(tmp_path)  # one /etc for every service made in a test

    def make(text: str, hub: FakeHub | None = None, db=None) -> UsersSync:
        users.write_text(text)
        service = UsersSync(RosterFile(users), hub or FakeHub(), str(tmp_path / "home"),
                            settle=0, status_file=tmp_path / "state" / "users-sync.json",
                            db=db or shared_db,
                            kill=lambda uid: killed.append(uid) or 2)
        service.killed = killed  # type: ignore[attr-defined]
        return service

    return make


def status(tmp_path) -> dict:
    return json.loads((tmp_path / "state" / "users-sync.json").read_text())


def test_every_reserved_name_is_skipped_and_everyone_else_is_synced(sync, tmp_path):
    reserved = sorted(RESERVED_NAMES)
    text = ("alice:a\n" + "".join(f"{n}:x\n" for n in reserved)
            + "labstaff:x\n[instructors]\nteacher:t\n")
    service = sync(text)
    _, outcome = service.sync_once()
    assert service.hub.people == {"alice", "teacher"}
    assert service.hub.members == {INSTRUCTORS: {"teacher"}, PARTICIPANTS: {"alice"}}
    assert set(service.db.users()) >= {"alice", "teacher"}
    assert not set(reserved) & {n for n, u in service.db.users().items() if in_range(u.uid)}
    # The static list at parse time, with line numbers; the container's own group
    # ("labstaff", gid 150) when its account would be made, with its line number too.
    report = status(tmp_path)
    assert [p["line"] for p in report["problems"]] == list(range(2, len(reserved) + 2))
    line = len(reserved) + 2
    assert report["failed"] == [{"user": "labstaff", "message":
                                 f"users.txt line {line}: username 'labstaff' is a system "
                                 "group here (gid 150): choose another"}]
    assert outcome.failed.keys() == {"labstaff"}
    assert report["participants"] == 2 and report["held"] is None  # labstaff is listed


class FlakyDB:
    """A SystemDB whose useradd fails for one name."""

    def __init__(self, db, broken: str) -> None:
        self.db, self.broken = db, broken

    def __getattr__(self, name):
        return getattr(self.db, name)

    def run(self, command: str, *args: str) -> None:
        if args[-1] == self.broken:
            raise RuntimeError(f"{command} failed: disk on fire")
        self.db.run(command, *args)


def test_one_failing_account_never_stops_the_others(sync, tmp_path):
    hub = FakeHub(refuse={"carol"})
    service = sync("alice:a\nbob:b\ncarol:c\ndave:d\n", hub)
    service.db = FlakyDB(service.db, "bob")
    _, outcome = service.sync_once()
    assert hub.people == {"alice", "dave"}
    assert hub.members[PARTICIPANTS] == {"alice", "dave"}
    assert "users.txt line 2" in outcome.failed["bob"] and "disk on fire" in outcome.failed["bob"]
    assert "refused by the fake hub" in outcome.failed["carol"]
    assert [f["user"] for f in status(tmp_path)["failed"]] == ["bob", "carol"]
    # Fixed: the next sync brings them in, nobody else is touched.
    service.db.broken, hub.refuse = "", set()
    _, outcome = service.sync_once()
    assert hub.people == {"alice", "bob", "carol", "dave"} and outcome.failed == {}


def test_a_truncated_or_halved_file_removes_nobody(sync, tmp_path):
    names = [f"p{i:02d}" for i in range(10)]
    service = sync("".join(f"{n}:pw\n" for n in names))
    service.sync_once()
    hub = service.hub
    assert hub.people == set(names)

    for broken in ("", "p00:pw\n", "".join(f"{n}:pw\n" for n in names[:4])):
        service.roster_file.path.write_text(broken)
        verdict, _ = service.sync_once()
        assert verdict.held and hub.people == set(names)
        assert not [c for c in hub.calls if c[0] == "DELETE"] and service.killed == []
        assert status(tmp_path)["held"] == verdict.held

    # A service restart in the middle changes nothing: the last good list is on disk.
    again = sync("", hub)
    verdict, _ = again.sync_once()
    assert verdict.held and hub.people == set(names)

    # Deliberate: the confirm line with the number removes them, and ends their processes.
    again.roster_file.path.write_text("# confirm: remove 8\np00:pw\np01:pw\n")
    verdict, outcome = again.sync_once()
    assert verdict.held is None and hub.people == {"p00", "p01"}
    assert sorted(outcome.killed) == names[2:]
    # ended before the hub's delete (so it is quick) and again after it
    assert again.killed == [again.db.users()[n].uid for n in names[2:] for _ in (1, 2)]
    assert status(tmp_path)["held"] is None


def test_small_removals_apply_at_once_and_end_processes(sync):
    service = sync("alice:a\nbob:b\ncarol:c\n")
    service.sync_once()
    bob_uid = service.db.users()["bob"].uid
    service.roster_file.path.write_text("carol:c\n")  # 2 of 3: allowed
    _, outcome = service.sync_once()
    # the fake kill ends 2 processes each time: before the hub's delete and after it
    assert service.hub.people == {"carol"} and outcome.killed == {"alice": 4, "bob": 4}
    assert bob_uid in service.killed
    assert "bob" in service.db.users()  # the account stays, like the home


def test_the_service_survives_any_error_and_keeps_polling(sync, monkeypatch):
    service = sync("alice:a\n")
    real_users = service.hub.users
    calls = iter([KeyError("a bug"), ConnectionError("hub restarting")])

    def users():
        for error in calls:
            raise error
        return real_users()

    service.hub.users = users
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if service.hub.people:
            raise SystemExit  # synced after both errors: stop the endless loop

    monkeypatch.setattr(usersync.time, "sleep", sleep)
    with pytest.raises(SystemExit):
        service.run(interval=0.01)
    assert service.hub.people == {"alice"}
