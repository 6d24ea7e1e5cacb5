"""System accounts for participants: one Linux user per participant, home 0700.

Homes are bind-mounted from the host and outlive the container, while /etc/passwd does
not (a rebuilt container starts from the image). So a participant's uid is read back from
the owner of their existing home; only a new home gets a new uid. That keeps every file a
participant ever wrote owned by them, across `docker compose up --build`.

A participant's account lives in the participants' id range (FIRST_UID..LAST_UID) with a
group of its own name and id. A name the system already uses outside that range (a user
like `daemon`, a group like `staff`, `sudo` or `docker`) is refused with ReservedName:
taking it over would either fail half-way or make that system group the participant's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .roster import check_username

log = logging.getLogger(__name__)

FIRST_UID = 2000
LAST_UID = 59999


class ReservedName(ValueError):
    """The name belongs to the system (a user or group outside the participants' range)."""


@dataclass(frozen=True)
class SystemUser:
    name: str
    uid: int
    gid: int
    home: Path
    created: bool  # True when this call made the account or its home


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int


def in_range(uid: int) -> bool:
    return FIRST_UID <= uid <= LAST_UID


def _read_db(path: Path) -> Iterator[list[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            yield fields


class SystemDB:
    """/etc/passwd and /etc/group under `root`, and the commands that change them.

    The container resolves names from these files only (no LDAP, no NSS modules), so
    reading them is what pwd/grp would do. Tests pass a temporary root: the shadow tools
    then work on its files (`useradd --prefix`), never on the machine's own.
    """

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)

    def users(self) -> dict[str, PasswdEntry]:
        return {f[0]: PasswdEntry(f[0], int(f[2]), int(f[3]) if f[3].isdigit() else -1)
                for f in _read_db(self.root / "etc/passwd") if len(f) >= 4}

    def groups(self) -> dict[str, int]:
        return {f[0]: int(f[2]) for f in _read_db(self.root / "etc/group")}

    def run(self, command: str, *args: str) -> None:
        prefix = () if self.root == Path("/") else ("--prefix", str(self.root))
        cmd = (command, *prefix, *args)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One account change at a time, across the hub's threads and users-sync.

        useradd locks /etc/passwd itself, but choosing a free uid and creating group and
        user must happen as one step, or two creators pick the same uid.
        """
        path = self.root / "run/workshop-accounts.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def system_conflict(name: str, db: SystemDB) -> str | None:
    """Why `name` cannot be a participant on this system, or None when it can."""
    user = db.users().get(name)
    groups = db.groups()
    if user is not None and not in_range(user.uid):
        return f"username {name!r} is a system account here (uid {user.uid}): choose another"
    if name in groups and not in_range(groups[name]):
        return f"username {name!r} is a system group here (gid {groups[name]}): choose another"
    if user is not None and not in_range(user.gid):
        return f"{name!r} has a system group (gid {user.gid}) as its primary group"
    return None


def _uid_for(home: Path, home_root: Path, db: SystemDB) -> int:
    """The uid for a new account: the owner of an existing home, else the next free id."""
    if home.is_dir() and in_range(owner := home.stat().st_uid):
        return owner
    taken = {u.uid for u in db.users().values()} | set(db.groups().values())
    # Homes of participants not (yet) known to this container still hold their uid.
    if home_root.is_dir():
        taken |= {d.stat().st_uid for d in home_root.iterdir() if d.is_dir()}
    for uid in range(FIRST_UID, LAST_UID + 1):
        if uid not in taken:
            return uid
    raise RuntimeError("no free uid left for participants")


def _ensure_account(name: str, home: Path, home_root: Path, db: SystemDB
                    ) -> tuple[PasswdEntry, bool]:
    """The passwd entry of `name`, created (with its own group) when missing."""
    if (entry := db.users().get(name)) is not None:
        return entry, False
    with db.lock():
        if (entry := db.users().get(name)) is not None:  # made while we waited
            return entry, False
        gid = db.groups().get(name)
        if gid is None:
            uid = gid = _uid_for(home, home_root, db)
            db.run("groupadd", "--gid", str(gid), name)
        else:  # a group left behind by an interrupted creation (in range: checked)
            uids = {u.uid for u in db.users().values()}
            uid = gid if gid not in uids else _uid_for(home, home_root, db)
        # No password: participants only ever reach their account through JupyterHub. bash
        # is the shell JupyterLab's terminal starts.
        db.run("useradd", "--uid", str(uid), "--gid", str(gid), "--no-create-home",
               "--home-dir", str(home), "--shell", "/bin/bash", name)
        log.info("created system user %s (uid %d)", name, uid)
        return db.users()[name], True


def ensure_system_user(name: str, home_root: str | os.PathLike[str] = "/home",
                       db: SystemDB | None = None) -> SystemUser:
    """Make sure `name` exists as a system user with a private home; idempotent.

    Raises ValueError for a name users.txt refuses, ReservedName for one the system
    uses. Needs root (the hub and its services run as root inside the container).
    """
    why = check_username(name)
    if why:
        raise ValueError(why)
    db = db or SystemDB()
    if why := system_conflict(name, db):
        raise ReservedName(why)
    home_root = Path(home_root)
    home = home_root / name
    entry, created = _ensure_account(name, home, home_root, db)
    if not home.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        created = True
    # Enforce ownership and 0700 every time: a home copied in by hand must not stay readable.
    st = home.stat()
    if (st.st_uid, st.st_gid) != (entry.uid, entry.gid):
        os.chown(home, entry.uid, entry.gid)
    if st.st_mode & 0o777 != 0o700:
        os.chmod(home, 0o700)
    return SystemUser(name, entry.uid, entry.gid, home, created)


def participant_uid(name: str, home_root: str | os.PathLike[str] = "/home",
                    db: SystemDB | None = None) -> int | None:
    """The uid `name`'s processes run as, when it is a participant's; else None.

    From the account, or from the owner of the home when the account is gone (a rebuilt
    container). Never a system uid: the caller may kill everything this uid runs.
    """
    entry = (db or SystemDB()).users().get(name)
    if entry is not None:
        return entry.uid if in_range(entry.uid) else None
    home = Path(home_root) / name
    try:
        owner = home.lstat().st_uid
    except OSError:
        return None
    return owner if in_range(owner) and home.is_dir() else None
