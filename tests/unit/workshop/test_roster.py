"""users.txt parsing: the old format, the additions, and every malformed form."""

from __future__ import annotations

import os

import bcrypt
import pytest

from workshop.roster import (
    RosterFile,
    RosterUnavailable,
    append_account,
    check_username,
    parse,
)


def test_the_original_format_still_works():
    roster = parse("alice:secret\nbob:hunter2\n")
    assert sorted(roster.accounts) == ["alice", "bob"]
    assert roster.participants == {"alice", "bob"} and roster.instructors == set()
    assert roster.accounts["alice"].check_password("secret")
    assert not roster.accounts["alice"].check_password("hunter2")
    assert roster.problems == ()


def test_comments_blank_lines_spaces_and_colons_in_passwords():
    roster = parse("# heading\n\n   \n  alice : pa:ss:word  \r\n#bob:nope\n")
    assert list(roster.accounts) == ["alice"]
    assert roster.accounts["alice"].check_password("pa:ss:word")
    assert roster.problems == ()


def test_instructor_sections():
    roster = parse("alice:a\n[instructors]\nteacher:t\n[ Participants ]\nbob:b\n")
    assert roster.instructors == {"teacher"}
    assert roster.participants == {"alice", "bob"}


def test_bcrypt_hashes_are_accepted_in_place_of_passwords():
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    account = parse(f"alice:{hashed}\n").accounts["alice"]
    assert account.hashed
    assert account.check_password("s3cret")
    assert not account.check_password("S3cret")
    assert not account.check_password("x" * 100)  # over bcrypt's limit: refused, no crash


def test_usernames_are_lowercased_like_jupyterhub_does():
    assert list(parse("Alice:pw\n").accounts) == ["alice"]


@pytest.mark.parametrize(("line", "message"), [
    ("no separator here", "no ':' found"),
    (":password", "empty username"),
    ("alice:", "empty password"),
    ("alice:   ", "empty password"),
    ("9lives:pw", "invalid username '9lives'"),
    ("al ice:pw", "invalid username 'al ice'"),
    ("../etc:pw", "invalid username"),
    ("a" * 33 + ":pw", "invalid username"),
    ("root:pw", "reserved"),
    ("alice:$2b$12$tooshort", "malformed bcrypt hash"),
    ("[teachers]", "unknown section '[teachers]'"),
])
def test_each_malformed_line_is_reported_and_skipped(line: str, message: str):
    roster = parse(f"good:pw\n{line}\nalso-good:pw\n")
    assert sorted(roster.accounts) == ["also-good", "good"]
    assert len(roster.problems) == 1
    problem = roster.problems[0]
    assert problem.line == 2
    assert message in problem.message
    assert str(problem).startswith("line 2: ")


def test_duplicates_keep_the_first_and_report_the_second():
    roster = parse("alice:one\nbob:b\nALICE:two\n")
    assert roster.accounts["alice"].check_password("one")
    assert [(p.line, "first on line 1" in p.message) for p in roster.problems] == [(3, True)]


def test_passwords_never_appear_in_reprs():
    account = parse("alice:topsecret\n").accounts["alice"]
    assert "topsecret" not in repr(account)


def test_roster_file_rereads_only_on_change(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("alice:a\n")
    users = RosterFile(path)
    first = users.load()
    assert users.load() is first  # unchanged file: cached
    replacement = tmp_path / "new.txt"
    replacement.write_text("alice:a\nbob:b\n")
    replacement.replace(path)  # the way editors save
    assert sorted(users.load().accounts) == ["alice", "bob"]


def test_missing_file_raises_a_clear_error(tmp_path):
    with pytest.raises(RosterUnavailable, match="cannot read"):
        RosterFile(tmp_path / "missing.txt").load()


def test_append_account_is_atomic_keeps_lines_and_mode(tmp_path):
    path = tmp_path / "users.txt"
    original = "# my class\nalice:a\nbroken line\n[instructors]\nteacher:t\n"
    path.write_text(original)
    os.chmod(path, 0o640)
    append_account(path, "dora", "dora-pw")
    text = path.read_text()
    assert text.startswith(original)
    roster = parse(text)
    assert roster.participants == {"alice", "dora"}  # back in a participants block
    assert roster.accounts["dora"].hashed and roster.accounts["dora"].check_password("dora-pw")
    assert path.stat().st_mode & 0o777 == 0o640
    # No temp file left; the lock file stays (it must, for the lock to mean anything).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".users.txt.lock", "users.txt"]

    append_account(path, "prof", "prof-pw", instructor=True)
    assert parse(path.read_text()).instructors == {"teacher", "prof"}
    with pytest.raises(ValueError, match="already exists"):
        append_account(path, "dora", "x")
    with pytest.raises(ValueError, match="invalid username"):
        append_account(path, "Bad Name", "x")


def test_check_username():
    assert check_username("anna.schmidt") is None
    assert check_username("x-1_y") is None
    assert "reserved" in check_username("nobody")
