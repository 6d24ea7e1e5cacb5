"""users.txt parsing: the old format, the additions, and every malformed form."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workshop.roster as roster_module
from workshop.reserved import RESERVED_NAMES
from workshop.roster import (
    USERNAME_RE,
    RosterFile,
    RosterUnavailable,
    append_account,
    check_username,
    editing,
    format_roster,
    parse,
    parse_bytes,
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


# -- what ordinary editors do to the bytes (issue 13) --------------------------------------
def test_a_latin1_line_costs_that_line_only_and_never_shows_its_password():
    data = (b"alice:a\n[instructors]\nteacher:t\n[participants]\n"
            + b"j\xf6rg:s\xe9cret\n" + b"bob:b\n")
    roster = parse_bytes(data)
    assert roster.participants == {"alice", "bob"} and roster.instructors == {"teacher"}
    [problem] = roster.problems
    assert problem.line == 5 and "not UTF-8" in problem.message and "j" in problem.message
    assert "cret" not in problem.message  # the password half of the line is never echoed


def test_a_bom_before_the_instructors_header_keeps_them_instructors():
    roster = parse_bytes(b"\xef\xbb\xbf[instructors]\nteacher:t\n[participants]\nalice:a\n")
    assert roster.instructors == {"teacher"} and roster.participants == {"alice"}
    assert roster.problems == ()


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_crlf_cr_and_lf_line_ends_give_the_same_roster_and_line_numbers(newline: bytes):
    lines = [b"# class", b"alice:pa:ss", b"broken", b"[instructors]", b"teacher:t"]
    roster = parse_bytes(newline.join(lines) + newline)
    assert roster.accounts["alice"].check_password("pa:ss")  # no \r left on the password
    assert roster.instructors == {"teacher"}
    assert [p.line for p in roster.problems] == [3]


def test_only_real_line_ends_count_for_line_numbers():
    # str.splitlines() would split at the form feed and shift every number after it.
    roster = parse_bytes(b"alice:pass\x0cword\nbroken\n")
    assert roster.accounts["alice"].check_password("pass\x0cword")
    assert [p.line for p in roster.problems] == [2]


def test_a_utf16_file_from_a_windows_editor_is_read():
    roster = parse_bytes("[instructors]\r\nteacher:t\r\n".encode("utf-16"))
    assert roster.instructors == {"teacher"}


def test_the_confirm_line_is_read_from_a_comment():
    assert parse("# confirm: remove 14\nalice:a\n").confirm_remove == 14
    assert parse("#CONFIRM:remove 3\n").confirm_remove == 3
    assert parse("# confirm: remove some\n").confirm_remove is None
    assert parse("alice:a\n").confirm_remove is None


def test_every_reserved_name_is_skipped_with_its_line_number():
    names = sorted(RESERVED_NAMES)
    text = "alice:a\n" + "".join(f"{n}:pw-{n}\n" for n in names) + "[instructors]\nteacher:t\n"
    roster = parse(text)
    assert set(roster.accounts) == {"alice", "teacher"}
    assert [p.line for p in roster.problems] == list(range(2, len(names) + 2))
    for problem, name in zip(roster.problems, names, strict=True):
        # "_apt" and friends cannot even be written as a participant's name.
        why = "is reserved for the system" if USERNAME_RE.match(name) else "invalid username"
        assert why in problem.message and repr(name) in problem.message


def test_the_reserved_list_covers_debian_base_passwd_and_the_issue_names():
    for name in ("staff", "users", "sudo", "tty", "shadow", "adm", "disk", "docker", "root",
                 "nogroup", "daemon", "www-data", "systemd-journal", "_ssh"):
        assert check_username(name) is not None, name
    master = Path("/usr/share/base-passwd")
    for table in ("passwd.master", "group.master"):  # on a Debian test machine: all of it
        if (master / table).exists():
            listed = {line.split(":")[0] for line in (master / table).read_text().splitlines()}
            assert listed <= RESERVED_NAMES, listed - RESERVED_NAMES


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_without_an_exception_and_keep_the_good_lines(garbage: bytes):
    data = b"alice:a\n" + garbage + b"\n[participants]\nzed:z\n"
    roster = parse_bytes(data)
    # Nothing in the garbage can take a good line down (a duplicate may, but then alice
    # or zed was listed again, which a line of their own says).
    assert "zed" in roster.accounts
    assert "alice" in roster.accounts or "alice" in data[8:].decode("utf-8", "replace").lower()


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True).filter(
        lambda n: check_username(n) is None),
    st.tuples(st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x85\u2028\u2029"),
                      min_size=1, max_size=20).map(str.strip).filter(bool), st.booleans()),
    max_size=8))
def test_the_last_good_copy_holds_exactly_the_same_accounts(people):
    roster = parse("".join(f"{'[instructors]' if i else '[participants]'}\n{n}:{pw}\n"
                           for n, (pw, i) in people.items()))
    again = parse_bytes(format_roster(roster).encode("utf-8"))
    assert {(a.name, a.secret, a.instructor) for a in again.accounts.values()} == \
        {(a.name, a.secret, a.instructor) for a in roster.accounts.values()}


# -- edits under the lock ---------------------------------------------------------------------
def cheap_hash(name: str, password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{name}:{hashed}"


def _add_in_process(path: str, name: str, start: float) -> None:
    roster_module.format_account = cheap_hash  # a forked child: patch its own copy
    time.sleep(max(0.0, start - time.time()))  # everyone starts at the same moment
    append_account(path, name, f"pw-{name}")


def test_concurrent_additions_from_processes_all_land(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("# my class\nalice:a\n")
    names = [f"p{i:02d}" for i in range(16)]
    start = time.time() + 0.5
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_in_process, args=(str(path), n, start)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * len(names)
    roster = parse(path.read_text())
    assert set(roster.accounts) == {"alice", *names} and roster.problems == ()


def test_concurrent_additions_from_threads_all_land(tmp_path, monkeypatch):
    monkeypatch.setattr(roster_module, "format_account", cheap_hash)
    path = tmp_path / "users.txt"
    path.write_text("alice:a\n")
    names = [f"t{i:02d}" for i in range(16)]
    barrier = threading.Barrier(len(names))

    def add(name: str) -> None:
        barrier.wait()
        append_account(path, name, "pw")

    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(add, names))
    assert set(parse(path.read_text()).accounts) == {"alice", *names}


def test_append_keeps_foreign_bytes_bom_and_crlf(tmp_path, monkeypatch):
    monkeypatch.setattr(roster_module, "format_account", cheap_hash)
    path = tmp_path / "users.txt"
    original = b"\xef\xbb\xbf# Kurs\r\nj\xf6rg:pw\r\nalice:a"
    path.write_bytes(original)
    append_account(path, "dora", "d")
    data = path.read_bytes()
    assert data.startswith(original + b"\r\n")  # not one byte of theirs changed
    assert data.endswith(b"\r\n") and b"\r\r" not in data and data.count(b"\n") == 4
    assert set(parse_bytes(data).accounts) == {"alice", "dora"}


def test_append_can_be_refused_under_the_lock(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("alice:a\n")

    def refuse(current):
        assert set(current.accounts) == {"alice"}
        raise ValueError("not now")

    with pytest.raises(ValueError, match="not now"):
        append_account(path, "dora", "d", check=refuse)
    assert path.read_text() == "alice:a\n"


def test_the_edit_lock_is_exclusive_across_processes(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("alice:a\n")
    code = ("import sys; sys.path[:0] = sys.argv[2:]\n"
            "from workshop.roster import editing\n"
            "with editing(sys.argv[1]): print('locked', flush=True)\n")
    services = str(Path(__file__).resolve().parents[3] / "services")
    with editing(path):
        other = subprocess.Popen([sys.executable, "-c", code, str(path), services],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        assert other.poll() is None  # waiting for our lock
    assert other.communicate(timeout=10)[0] == "locked\n"
