"""System accounts for participants: one Linux user per participant, home 0700.

Homes are bind-mounted from the host and outlive the container, while /etc/passwd does
not (a rebuilt container starts from the image). So a participant's uid is read back from
the owner of their existing home; only a new home gets a new uid. That keeps every file a
participant ever wrote owned by them, across `docker compose up --build`.
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .roster import check_username

log = logging.getLogger(__name__)

LOCK_FILE = "/run/workshop-accounts.lock"
FIRST_UID = 2000
LAST_UID = 59999


@dataclass(frozen=True)
class SystemUser:
    name: str
    uid: int
    gid: int
    home: Path
    created: bool  # True when this call made the account or its home


def _taken_ids() -> set[int]:
    return {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}


def _uid_for(name: str, home: Path, home_root: Path) -> int:
    """The uid to give `name`: the owner of an existing home, else the next free id."""
    if home.is_dir():
        owner = home.stat().st_uid
        if FIRST_UID <= owner <= LAST_UID:
            return owner
    taken = _taken_ids()
    # Homes of participants not (yet) known to this container still hold their uid.
    if home_root.is_dir():
        taken |= {d.stat().st_uid for d in home_root.iterdir() if d.is_dir()}
    for uid in range(FIRST_UID, LAST_UID + 1):
        if uid not in taken:
            return uid
    raise RuntimeError("no free uid left for participants")


def _run(*cmd: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")


@contextmanager
def _accounts_lock() -> Iterator[None]:
    """One account change at a time, across the hub's threads and the users-sync process.

    useradd locks /etc/passwd itself, but choosing a free uid and creating group and user
    must happen as one step, or two creators pick the same uid.
    """
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _ensure_account(name: str, home: Path, home_root: Path) -> tuple[pwd.struct_passwd, bool]:
    """The passwd entry of `name`, created (with its own group) when missing."""
    try:
        return pwd.getpwnam(name), False
    except KeyError:
        pass
    with _accounts_lock():
        try:  # made by someone else while we waited for the lock
            return pwd.getpwnam(name), False
        except KeyError:
            pass
        try:  # a group left behind by an interrupted creation is reused
            gid = grp.getgrnam(name).gr_gid
            uid = gid if gid not in {p.pw_uid for p in pwd.getpwall()} else _uid_for(
                name, home, home_root)
        except KeyError:
            uid = gid = _uid_for(name, home, home_root)
            _run("groupadd", "--gid", str(gid), name)
        # No password: participants only ever reach their account through JupyterHub. bash
        # is the shell JupyterLab's terminal starts.
        _run("useradd", "--uid", str(uid), "--gid", str(gid), "--no-create-home",
             "--home-dir", str(home), "--shell", "/bin/bash", name)
        log.info("created system user %s (uid %d)", name, uid)
        return pwd.getpwnam(name), True


def ensure_system_user(name: str, home_root: str | os.PathLike[str] = "/home") -> SystemUser:
    """Make sure `name` exists as a system user with a private home; idempotent.

    Needs root (the hub and its services run as root inside the container).
    """
    why = check_username(name)
    if why:
        raise ValueError(why)
    home_root = Path(home_root)
    home = home_root / name
    entry, created = _ensure_account(name, home, home_root)
    if entry.pw_uid < FIRST_UID:
        raise ValueError(f"{name!r} is a system account (uid {entry.pw_uid}), not a participant")
    if not home.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        created = True
    # Enforce ownership and 0700 every time: a home copied in by hand must not stay readable.
    st = home.stat()
    if (st.st_uid, st.st_gid) != (entry.pw_uid, entry.pw_gid):
        os.chown(home, entry.pw_uid, entry.pw_gid)
    if st.st_mode & 0o777 != 0o700:
        os.chmod(home, 0o700)
    return SystemUser(name, entry.pw_uid, entry.pw_gid, home, created)
