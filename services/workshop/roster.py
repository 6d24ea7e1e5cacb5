"""users.txt, the participant list: parsing, checking passwords, safe edits.

The format stays compatible with the original one-``username:password``-per-line file:

- the password is everything after the first ``:`` (so it may itself contain ``:``);
- blank lines and lines starting with ``#`` are ignored; surrounding spaces are dropped;
- a line ``[instructors]`` starts a block of instructors, ``[participants]`` switches back
  (without any header everybody is a participant, exactly as before);
- a password may be a bcrypt hash (``$2b$12$...``) instead of plain text;
- a comment ``# confirm: remove N`` lets users-sync remove N people at once (rosterguard).

A broken line never takes the rest of the file down: it becomes a `Problem` with its line
number, and every other line still counts. That holds for the bytes too, since instructors
use ordinary editors: each line is decoded on its own (one Latin-1 line is one problem, not
an unreadable file), a leading byte-order mark is dropped (it would otherwise hide the
first `[instructors]` header), and CRLF or CR line ends count like LF. This module is the
only parser of the file; the hub, the users-sync service and the dashboard all go through
it, and every edit it makes holds the file's lock (`editing`).
"""

from __future__ import annotations

import codecs
import fcntl
import hmac
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .reserved import RESERVED_NAMES

# Linux account names (the participant becomes a system user) that are also safe in URLs.
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
BCRYPT_RE = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
SECTIONS = {"participants": False, "instructors": True}
CONFIRM_RE = re.compile(r"^#\s*confirm\s*:\s*remove\s+(\d+)\s*$", re.IGNORECASE)
# Only these end a line: str.splitlines() also splits at form feeds, U+2028 and friends,
# which would shift every line number after them away from what the editor shows.
LINE_END_RE = re.compile(r"\r\n|\r|\n")
LINE_END_BYTES_RE = re.compile(rb"\r\n|\r|\n")


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
    name: str | None = None  # whose line it is, when the username itself is fine

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Roster:
    accounts: Mapping[str, Account]
    problems: tuple[Problem, ...] = ()
    confirm_remove: int | None = None  # from a line "# confirm: remove N"

    @property
    def instructors(self) -> frozenset[str]:
        return frozenset(a.name for a in self.accounts.values() if a.instructor)

    @property
    def participants(self) -> frozenset[str]:
        return frozenset(a.name for a in self.accounts.values() if not a.instructor)


class RosterUnavailable(RuntimeError):
    """users.txt cannot be read at all (missing or unreadable)."""


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
        return Problem(number, f"empty password for {name!r}", name)
    if secret.startswith(BCRYPT_PREFIXES) and not BCRYPT_RE.match(secret):
        return Problem(number, f"malformed bcrypt hash for {name!r}", name)
    return Account(name=name, secret=secret, instructor=instructor, line=number)


def _section_header(line: str) -> str | None:
    """The section name when `line` (stripped) is a `[section]` header."""
    if line.startswith("[") and line.endswith("]"):
        return line[1:-1].strip().lower()
    return None


def _text_lines(text: str) -> Iterator[tuple[int, str | Problem]]:
    yield from enumerate(LINE_END_RE.split(text.removeprefix("\ufeff")), start=1)


def _undecodable(number: int, raw: bytes, error: UnicodeDecodeError) -> Problem:
    # Name the line by its username part only: the rest may be a password.
    who = raw.partition(b":")[0].strip()[:40].decode("utf-8", "replace")
    byte = raw[error.start:error.start + 1].hex()
    name = who.lower() if check_username(who.lower()) is None else None
    return Problem(number, f"not UTF-8 text (byte 0x{byte} in {who!r}...): save users.txt "
                           "as UTF-8", name)


def _byte_lines(data: bytes) -> Iterator[tuple[int, str | Problem]]:
    """Lines of the file's bytes, each decoded on its own; a bad one becomes a Problem."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Windows editors' "Unicode": the whole file is UTF-16, not UTF-8 line by line.
        yield from _text_lines(data.decode("utf-16", errors="replace"))
        return
    data = data.removeprefix(codecs.BOM_UTF8)
    for number, raw in enumerate(LINE_END_BYTES_RE.split(data), start=1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield number, _undecodable(number, raw, e)


def _parse_lines(lines: Iterator[tuple[int, str | Problem]]) -> Roster:
    accounts: dict[str, Account] = {}
    problems: list[Problem] = []
    confirm: int | None = None
    instructor = False
    for number, raw in lines:
        if isinstance(raw, Problem):
            problems.append(raw)
            continue
        line = raw.strip().removeprefix("\ufeff").strip()
        if not line or line.startswith("#"):
            if match := CONFIRM_RE.match(line):
                confirm = int(match.group(1))
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
    return Roster(accounts=accounts, problems=tuple(problems), confirm_remove=confirm)


def parse(text: str) -> Roster:
    """Parse the content of users.txt; bad lines become problems, never exceptions."""
    return _parse_lines(_text_lines(text))


def parse_bytes(data: bytes) -> Roster:
    """Parse users.txt as stored: per-line decoding, so a stray Latin-1 byte costs one line."""
    return _parse_lines(_byte_lines(data))


def _instructor_section_at_end(data: bytes) -> bool:
    """Whether a line appended to `data` would be read as an instructor."""
    instructor = False
    for _, raw in _byte_lines(data):
        section = _section_header(raw.strip()) if isinstance(raw, str) else None
        if section in SECTIONS:
            instructor = SECTIONS[section]
    return instructor


def format_roster(roster: Roster) -> str:
    """A users.txt holding exactly `roster`'s accounts (users-sync's last good copy)."""
    lines = ["# written by users-sync: the last users.txt that was applied"]
    for instructor, header in ((False, "[participants]"), (True, "[instructors]")):
        lines.append(header)
        lines += [f"{a.name}:{a.secret}" for a in roster.accounts.values()
                  if a.instructor == instructor]
    return "\n".join(lines) + "\n"


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
            data = self.path.read_bytes()
        except OSError as e:
            raise RosterUnavailable(f"cannot read {self.path}: {e}") from e
        self._roster = parse_bytes(data)
        self._signature = signature
        return self._roster


def format_account(name: str, password: str) -> str:
    """The users.txt line for a new account (the password is stored as a bcrypt hash)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")
    return f"{name}:{hashed}"


@contextmanager
def editing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold users.txt's edit lock: one read-modify-rename at a time, across processes.

    The lock is a separate file next to users.txt (`.users.txt.lock`), because users.txt
    itself is replaced on every save and a lock on a replaced file protects nothing.
    """
    path = Path(path)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `path` atomically (temp file + rename): readers see the old or the new file.

    An existing file keeps its owner and mode; a new one gets `mode`.
    """
    st = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, st.st_mode & 0o777 if st else mode)
        if st:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_account(path: str | os.PathLike[str], name: str, password: str, *,
                   instructor: bool = False,
                   check: Callable[[Roster], None] | None = None) -> Account:
    """Add one account to users.txt, keeping every existing line byte for byte.

    Runs under the edit lock, so two additions at the same moment both land. `check` sees
    the file's current roster under the lock and may refuse the edit by raising ValueError
    (the dashboard refuses to add to a file users-sync is holding back). Raises ValueError
    for a bad or already present name.
    """
    path = Path(path)
    why = check_username(name)
    if why:
        raise ValueError(why)
    if not password:
        raise ValueError("empty password")
    line = format_account(name, password).encode("ascii")  # slow (bcrypt): before the lock
    with editing(path):
        data = path.read_bytes() if path.exists() else b""
        current = parse_bytes(data)
        if check is not None:
            check(current)
        if name in current.accounts:
            raise ValueError(f"user {name!r} already exists")
        newline = b"\r\n" if b"\r\n" in data else b"\n"  # the file's own line ends
        if data and not data.endswith((b"\n", b"\r")):
            data += newline
        if _instructor_section_at_end(data) != instructor:
            data += (b"[instructors]" if instructor else b"[participants]") + newline
        data += line + newline
        replace_file(path, data)
    return parse_bytes(data).accounts[name]
