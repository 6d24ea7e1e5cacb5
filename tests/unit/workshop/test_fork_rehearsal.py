"""The rehearsal's users.txt edits: throw-away participants in and out through the safe
path, every other byte of the file (and everybody else) untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from workshop import rehearsal
from workshop.roster import parse_bytes
from workshop.rosterguard import removal_refused

CLASS = b"""# my class
alice:alice-pw
bob:bob-pw

[instructors]
teacher:teacher-pw
"""


@pytest.fixture
def users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "users.txt"
    path.write_bytes(CLASS)
    homes = tmp_path / "homes"
    homes.mkdir()
    monkeypatch.setattr(rehearsal, "HOMES", homes)
    monkeypatch.setenv("WORKSHOP_USERS_SYNC_STATUS", str(tmp_path / "state" / "sync.json"))
    return path


def test_added_participants_are_a_marked_block_at_the_end(users: Path):
    out = rehearsal.add(5, users)
    data = users.read_bytes()
    assert data.startswith(CLASS)  # nothing of the class changed
    roster = parse_bytes(data)
    names = [name for name, _ in out["people"]]
    assert names == [f"rehearsal-{out['tag']}-{i:03d}" for i in range(1, 6)]
    assert set(names) <= roster.participants  # participants, not instructors
    assert "teacher" in roster.instructors and {"alice", "bob"} <= roster.participants
    assert all(roster.accounts[n].check_password(p) for n, p in out["people"])


def test_removal_restores_the_file_byte_for_byte(users: Path):
    out = rehearsal.add(3, users)
    after, removed = rehearsal._without(users.read_bytes(), out["tag"])
    assert (after, removed) == (CLASS, 3)


def test_lines_added_after_the_block_keep_their_section(users: Path):
    out = rehearsal.add(3, users)
    # The dashboard appends a participant while the rehearsal runs (no section line:
    # the file ends in the participants section now).
    users.write_bytes(users.read_bytes() + b"zoe:zoe-pw\n")
    after, removed = rehearsal._without(users.read_bytes(), out["tag"])
    roster = parse_bytes(after)
    assert removed == 3 and "zoe" in roster.participants and "zoe" not in roster.instructors
    assert set(roster.accounts) == {"alice", "bob", "teacher", "zoe"}


def test_only_the_tags_accounts_go(users: Path):
    first, second = rehearsal.add(2, users), rehearsal.add(2, users)
    after, removed = rehearsal._without(users.read_bytes(), first["tag"])
    left = parse_bytes(after).accounts
    assert removed == 2 and all(n in left for n, _ in second["people"])
    assert not any(n in left for n, _ in first["people"])


def test_a_large_removal_carries_its_confirmation(users: Path, monkeypatch):
    out = rehearsal.add(10, users)
    before = set(parse_bytes(users.read_bytes()).accounts)
    seen = []
    monkeypatch.setattr(rehearsal, "_wait_applied",
                        lambda tag, wait: seen.append(users.read_bytes()) or True)
    monkeypatch.setattr(rehearsal, "_delete_leftovers", lambda tag: {"deleted": []})
    result = rehearsal.remove(out["tag"], users)
    assert result["removed"] == 10
    during = parse_bytes(seen[0])
    assert during.confirm_remove == 10 and removal_refused(before, during) is None
    assert users.read_bytes() == CLASS  # and the confirmation is gone again afterwards


def test_a_held_back_file_gets_nobody_added(users: Path, tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    # users-sync applied a class of 10; the file now lists 3 of them (an editor accident).
    (state / "sync.last-good.txt").write_text(
        "".join(f"p{i}:pw\n" for i in range(10)))
    users.write_bytes(b"p0:pw\np1:pw\np2:pw\n")
    with pytest.raises(ValueError, match="held back"):
        rehearsal.add(3, users)
    assert users.read_bytes() == b"p0:pw\np1:pw\np2:pw\n"
