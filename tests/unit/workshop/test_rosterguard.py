"""The mass-removal guard, and that the hub's logins follow what users-sync keeps in force."""

from __future__ import annotations

import pytest

from workshop.roster import RosterFile, parse
from workshop.rosterguard import GuardedRoster, removal_refused


def people(n: int, prefix: str = "p") -> str:
    return "".join(f"{prefix}{i:02d}:pw\n" for i in range(n))


def names(n: int, prefix: str = "p") -> set[str]:
    return {f"{prefix}{i:02d}" for i in range(n)}


@pytest.mark.parametrize(("before", "text", "held"), [
    (3, people(1), False),  # a class of 3 losing 2: small, allowed
    (4, people(1), False),  # 3 at once is always allowed
    (20, people(10), False),  # exactly half: allowed
    (20, people(9), True),  # 11 of 20: held
    (8, people(4), False),  # 4 of 8 is half
    (8, people(3), True),  # 5 of 8: more than half and more than 3
    (1, "", True),  # nobody left: always held
    (2, "# everyone was here\n", True),
    (0, "", False),  # nothing to lose
    (20, people(9) + "# confirm: remove 11\n", False),  # said so, with the number
    (20, people(9) + "# confirm: remove 10\n", True),  # a different number: not this change
    (5, "# confirm: remove 5\n", False),  # ending the class on purpose
    (20, people(30), False),  # adding is never held
])
def test_the_rule(before: int, text: str, held: bool):
    assert (removal_refused(names(before), parse(text)) is not None) == held


def test_the_message_says_what_and_how_to_confirm():
    message = removal_refused(names(20), parse(people(2)))
    assert "removes 18 of 20 people at once" in message
    assert "p02, p03" in message and "and 10 more" in message
    assert "'# confirm: remove 18'" in message
    assert "lists nobody (the last good list has 20)" in removal_refused(names(20), parse(""))


def setup(tmp_path, text: str) -> tuple[GuardedRoster, RosterFile]:
    path = tmp_path / "users.txt"
    path.write_text(text)
    users = RosterFile(path)
    return GuardedRoster(users, tmp_path / "state" / "last-good.txt"), users


def test_a_truncated_file_keeps_the_last_good_list_in_force(tmp_path):
    guard, users = setup(tmp_path, people(12))
    first = guard.current()
    assert first.held is None and set(first.roster.accounts) == names(12)
    guard.remember(first.roster)

    users.path.write_text("")  # the editor truncated it, and has not written yet
    verdict = guard.current()
    assert "lists nobody" in verdict.held
    assert set(verdict.roster.accounts) == names(12)
    assert verdict.roster.accounts["p03"].check_password("pw")

    users.path.write_text(people(12) + "newbie:n\n")  # saved: in force again
    assert guard.current().held is None


def test_the_last_good_list_survives_a_restart_and_is_private(tmp_path):
    guard, users = setup(tmp_path, people(6) + "[instructors]\nteacher:t\n")
    guard.remember(guard.current().roster)
    copy = tmp_path / "state" / "last-good.txt"
    assert copy.stat().st_mode & 0o777 == 0o600  # it holds passwords
    users.path.unlink()  # gone while the hub restarts

    after_restart = GuardedRoster(RosterFile(users.path), copy)
    verdict = after_restart.current()
    assert "cannot read" in verdict.held
    assert verdict.roster.instructors == {"teacher"} and verdict.roster.participants == names(6)


def test_without_a_last_good_list_the_hubs_users_are_the_baseline(tmp_path):
    guard, _ = setup(tmp_path, "")
    verdict = guard.current(known=names(10))
    assert verdict.held and verdict.roster is None  # nothing to keep in force, nothing lost
    assert guard.current(known=frozenset()).held is None  # a new, empty class is fine


def test_a_confirmed_mass_removal_is_applied(tmp_path):
    guard, users = setup(tmp_path, people(10))
    guard.remember(guard.current().roster)
    users.path.write_text(people(2))
    assert guard.current().held
    users.path.write_text("# confirm: remove 8\n" + people(2))
    verdict = guard.current()
    assert verdict.held is None and set(verdict.roster.accounts) == names(2)


def test_a_broken_line_for_someone_in_the_class_keeps_their_last_good_entry(tmp_path):
    guard, users = setup(tmp_path, "alice:old\nbob:b\n[instructors]\nteacher:t\n")
    guard.remember(guard.current().roster)
    # The instructor retypes alice's password in a Latin-1 editor and adds a broken newbie.
    users.path.write_bytes(b"alice:n\xe9w\nbob:b\n[instructors]\nteacher:t\n"
                           b"[participants]\nnewbie:\n")
    verdict = guard.current()
    assert verdict.held is None
    assert set(verdict.roster.accounts) == {"alice", "bob", "teacher"}
    assert verdict.roster.accounts["alice"].check_password("old")  # as before the typo
    assert [(p.line, p.name) for p in verdict.roster.problems] == [(1, "alice"), (6, "newbie")]


def test_a_whole_class_saved_as_latin1_loses_nobody(tmp_path):
    text = "".join(f"p{i:02d}:pässwort{i}\n" for i in range(12))
    guard, users = setup(tmp_path, text)
    guard.remember(guard.current().roster)
    users.path.write_bytes(text.encode("latin-1"))
    verdict = guard.current()
    assert len(verdict.roster.problems) == 12 and set(verdict.roster.accounts) == names(12)
    assert verdict.roster.accounts["p03"].check_password("pässwort3")
