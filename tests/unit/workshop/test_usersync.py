"""What the users sync decides to change in the hub for a given users.txt."""

from __future__ import annotations

from workshop.roster import parse
from workshop.usersync import INSTRUCTORS, PARTICIPANTS, plan


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
