"""users.txt, the participant list: parsing, checking passwords, safe edits.

The format stays compatible with the original one-``username:password``-per-line file:

- the password is everything after the first ``:`` (so it may itself contain ``:``);
- blank lines and lines starting with ``#`` are ignored; surrounding spaces are dropped;
- a line ``[instructors]`` starts a block of instructors, ``[participants]`` switches back
  (without any header everybody is a participant, exactly as before);
- a password may be a bcrypt hash (``$2b$12$...``) instead of plain text.

A broken line never takes the rest of the file down: it becomes a `Problem` with its line
number, and every other line still counts. This module is the only parser of the file; the
hub, the users-sync service and the dashboard all go through it.
"""

from __future__ import annotations

import hmac
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Linux account names (the participant becomes a system user) that are also safe in URLs.
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
BCRYPT_RE = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
SECTIONS = {"participants": False, "instructors": True}
# Accounts the base image already has: a participant must never become one of them.
RESERVED_NAMES = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "_apt", "nobody", "messagebus",
    "systemd-network", "systemd-timesync", "jupyterhub", "admin",
})


@dataclass(frozen=True)
class Account:
    """One participant or instructor. The secret is never part of its repr."""

    name: str
    secret: str = field(repr=False)
    instructor: bool = False
    line: int = 0

    @property
    def hashed(self) -> bool:
        return self.secret.startswith(BCRYPT_PREFIXES)

    def check_password(self, password: str) -> bool:
        given = password.encode("utf-8")
        if self.hashed:
            import bcrypt  # here, not at the top: create-node.py parses without it

            try:
                return bcrypt.checkpw(given, self.secret.encode("ascii"))
            except ValueError:  # e.g. a password over bcrypt's 72-byte limit
                return False
        return hmac.compare_digest(given, self.secret.encode("utf-8"))


@dataclass(frozen=True)
class Problem:
    """A line of users.txt that was skipped, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Roster:
    accounts: Mapping[str, Account]
    problems: tuple[Problem, ...] = ()

    @property
    def instructors(self) -> frozenset[str]:
        return frozenset(a.name for a in self.accounts.values() if a.instructor)

    @property
    def participants(self) -> frozenset[str]:
        return frozenset(a.name for a in self.accounts.values() if not a.instructor)


class RosterUnavailable(RuntimeError):
    """users.txt cannot be read at all (missing, unreadable, not UTF-8)."""


def check_username(name: str) -> str | None:
    """Why `name` cannot be an account name, or None when it can."""
    if not name:
        return "empty username"
    if not USERNAME_RE.match(name):
        return (
            f"invalid username {name!r}: use a-z, 0-9, '.', '-' and '_', "
            "start with a letter, at most 32 characters"
        )
    if name in RESERVED_NAMES:
        return f"username {name!r} is reserved for the system"
    return None


def _parse_line(text: str, number: int, instructor: bool) -> Account | Problem:
    name, sep, secret = text.partition(":")
    name = name.strip().lower()
    secret = secret.strip()
    if not sep:
        return Problem(number, "expected 'username:password' (no ':' found)")
    why = check_username(name)
    if why:
        return Problem(number, why)
    if not secret:
        return Problem(number, f"empty password for {name!r}")
    if secret.startswith(BCRYPT_PREFIXES) and not BCRYPT_RE.match(secret):
        return Problem(number, f"malformed bcrypt hash for {name!r}")
    return Account(name=name, secret=secret, instructor=instructor, line=number)


def _section_header(line: str) -> str | None:
    """The section name when `line` (stripped) is a `[section]` header."""
    if line.startswith("[") and line.endswith("]"):
        return line[1:-1].strip().lower()
    return None


def _instructor_section_at_end(text: str) -> bool:
    """Whether a line appended to `text` would be read as an instructor."""
    instructor = False
    for raw in text.splitlines():
        section = _section_header(raw.strip())
        if section in SECTIONS:
            instructor = SECTIONS[section]
    return instructor


def parse(text: str) -> Roster:
    """Parse the content of users.txt; bad lines become problems, never exceptions."""
    accounts: dict[str, Account] = {}
    problems: list[Problem] = []
    instructor = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        section = _section_header(line)
        if section is not None:
            if section in SECTIONS:
                instructor = SECTIONS[section]
            else:
                known = ", ".join(f"[{s}]" for s in SECTIONS)
                problems.append(Problem(number, f"unknown section {line!r} (known: {known})"))
            continue
        parsed = _parse_line(line, number, instructor)
        if isinstance(parsed, Problem):
            problems.append(parsed)
        elif parsed.name in accounts:
            first = accounts[parsed.name].line
            why = f"duplicate user {parsed.name!r} (first on line {first})"
            problems.append(Problem(number, why))
        else:
            accounts[parsed.name] = parsed
    return Roster(accounts=accounts, problems=tuple(problems))


class RosterFile:
    """users.txt on disk, parsed again only when the file changed.

    Editors often replace the file instead of writing in place, so the change check looks
    at inode, size and modification time together.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._signature: tuple[int, int, int] | None = None
        self._roster: Roster | None = None

    def signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> Roster:
        """The current roster; raises RosterUnavailable when the file cannot be read."""
        signature = self.signature()
        if signature is not None and signature == self._signature and self._roster:
            return self._roster
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RosterUnavailable(f"cannot read {self.path}: {e}") from e
        self._roster = parse(text)
        self._signature = signature
        return self._roster


def format_account(name: str, password: str) -> str:
    """The users.txt line for a new account (the password is stored as a bcrypt hash)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")
    return f"{name}:{hashed}"


def append_account(path: str | os.PathLike[str], name: str, password: str, *,
                   instructor: bool = False) -> Account:
    """Add one account to users.txt atomically, keeping every existing line as it is.

    The new file is written next to the old one and renamed over it, so a reader (the hub,
    an editor) sees either the old or the new file, never half of one. Raises ValueError
    for a bad or already present name.
    """
    path = Path(path)
    why = check_username(name)
    if why:
        raise ValueError(why)
    if not password:
        raise ValueError("empty password")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if name in parse(text).accounts:
        raise ValueError(f"user {name!r} already exists")
    if text and not text.endswith("\n"):
        text += "\n"
    if _instructor_section_at_end(text) != instructor:
        text += "[instructors]\n" if instructor else "[participants]\n"
    text += format_account(name, password) + "\n"
    st = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=".users.txt.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # Keep the instructor's ownership and mode (0600 for a new file: it holds passwords).
        os.chmod(tmp, st.st_mode & 0o777 if st else 0o600)
        if st:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return parse(text).accounts[name]
