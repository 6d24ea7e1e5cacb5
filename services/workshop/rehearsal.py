"""The node's side of a class rehearsal (rehearse.py): throw-away participants in, their
memory measured, and everything of theirs out again; never anybody else's.

Run inside the hub's container, as root (rehearse.py does it through `docker exec`):

    python3 -m workshop.rehearsal add 60        # prints {"tag": ..., "people": [...]}
    python3 -m workshop.rehearsal memory TAG    # node memory, and PSS/RSS per participant
    python3 -m workshop.rehearsal remove TAG    # accounts, processes, homes: all gone

Throw-away participants are named `rehearsal-<tag>-NNN` with a fresh random tag that no
account, home or users.txt line uses yet. They enter and leave through users.txt's safe
path, under its edit lock, so users-sync, logins and the dashboard see an ordinary edit:
a marked block of lines is appended, and on removal exactly the lines naming the tag's
accounts (and the markers) go again, with a `# confirm: remove N` line when the guard
would otherwise hold the removal back, and that line goes again as soon as users-sync has
applied it. Every other byte of users.txt stays as it was. Homes, accounts and runtime
directories are deleted only for names carrying the tag.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import sys
import time
from pathlib import Path

from .accounts import SystemDB, in_range
from .processes import kill_user_processes
from .roster import RosterFile, RosterUnavailable, editing, parse_bytes, replace_file
from .rosterguard import SMALL_REMOVAL, GuardedRoster
from .syncstatus import last_good_path, status_path

PREFIX = "rehearsal-"
HOMES = Path("/home")
RUNTIME = Path("/run/workshop-fork/runtime")


def users_file() -> Path:
    return Path(os.environ.get("WORKSHOP_USERS_FILE", "/srv/hub/etc/jupyterhub/users.txt"))


def names(tag: str, n: int) -> list[str]:
    return [f"{PREFIX}{tag}-{i:03d}" for i in range(1, n + 1)]


def _tag_in_use(tag: str, data: bytes) -> bool:
    mark = f"{PREFIX}{tag}-"
    return (mark.encode() in data or any(d.name.startswith(mark) for d in HOMES.iterdir())
            or any(p.pw_name.startswith(mark) for p in pwd.getpwall()))


def add(n: int, path: Path) -> dict:
    """Append n throw-away participants to users.txt; their names and passwords."""
    if not 1 <= n <= 500:
        raise ValueError("between 1 and 500 participants")
    with editing(path):
        data = path.read_bytes()
        tag = secrets.token_hex(3)
        while _tag_in_use(tag, data):
            tag = secrets.token_hex(3)
        guard = GuardedRoster(RosterFile(path), last_good_path(status_path()))
        held = guard.judge(parse_bytes(data)).held
        if held:
            raise ValueError(f"users.txt is held back, not adding anybody: {held}")
        people = [(name, secrets.token_urlsafe(12)) for name in names(tag, n)]
        nl = b"\r\n" if b"\r\n" in data else b"\n"
        block = [f"# rehearsal {tag}: throw-away participants, removed again by rehearse.py",
                 "[participants]", *(f"{name}:{password}" for name, password in people),
                 f"# rehearsal {tag} end"]
        if data and not data.endswith((b"\n", b"\r")):
            data += nl
        replace_file(path, data + nl.join(line.encode() for line in block) + nl)
    return {"tag": tag, "people": people}


def _without(data: bytes, tag: str) -> tuple[bytes, int]:
    """users.txt without the tag's accounts and markers (and its section line when
    nothing follows it, which would otherwise change section); how many accounts went."""
    mark = f"{PREFIX}{tag}-".encode()
    begin, end = f"# rehearsal {tag}:".encode(), f"# rehearsal {tag} end".encode()
    lines = data.splitlines(keepends=True)
    kept, removed, inside = [], 0, False
    for line in lines:
        text = line.strip()
        if text.startswith(begin):
            inside = True
            continue
        if text == end:
            inside = False
            continue
        if text.startswith(mark) and b":" in text:
            removed += 1
            continue
        kept.append((inside, line))
    out = []
    for i, (inside, line) in enumerate(kept):
        rest = [t for _, t in kept[i + 1:] if t.strip()]
        if inside and line.strip() == b"[participants]" and not rest:
            continue  # our own section line, with nothing after it any more
        out.append(line)
    return b"".join(out), removed


def _confirm_line(count: int) -> bytes:
    return f"# confirm: remove {count}".encode()


def remove(tag: str, path: Path, wait: float = 120.0) -> dict:
    """Take the tag's participants out of users.txt, wait until users-sync has ended
    their servers and processes, then delete their homes and accounts."""
    if not tag.isalnum():
        raise ValueError("a tag is letters and digits")
    with editing(path):
        data = path.read_bytes()
        before = len(parse_bytes(data).accounts)
        after, count = _without(data, tag)
        confirm = count > SMALL_REMOVAL and 2 * count > before
        if confirm:  # the guard holds back a save removing over half the class
            nl = b"\r\n" if b"\r\n" in after else b"\n"
            after += _confirm_line(count) + nl
        if count:
            replace_file(path, after)
    gone = _wait_applied(tag, wait)
    if confirm:
        with editing(path):
            data = path.read_bytes()
            lines = [line for line in data.splitlines(keepends=True)
                     if line.strip() != _confirm_line(count)]
            replace_file(path, b"".join(lines))
    return {"tag": tag, "removed": count, "applied": gone, **_delete_leftovers(tag)}


def _wait_applied(tag: str, wait: float) -> bool:
    """Until the last good list (what users-sync applied) names none of the tag."""
    good = RosterFile(last_good_path(status_path()))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with contextlib.suppress(RosterUnavailable):
            if not any(n.startswith(f"{PREFIX}{tag}-") for n in good.load().accounts):
                return True
        time.sleep(0.5)
    return False


def _delete_leftovers(tag: str) -> dict:
    """Processes, homes, runtime directories and accounts of the tag's names only."""
    mark = f"{PREFIX}{tag}-"
    deleted, db = [], SystemDB()
    for entry in pwd.getpwall():
        if not entry.pw_name.startswith(mark) or not in_range(entry.pw_uid):
            continue
        kill_user_processes(entry.pw_uid)
        home = HOMES / entry.pw_name
        if home.is_dir() and not home.is_symlink() and home.stat().st_uid == entry.pw_uid:
            shutil.rmtree(home)
        shutil.rmtree(RUNTIME / str(entry.pw_uid), ignore_errors=True)
        with db.lock():
            db.run("userdel", entry.pw_name)
            with contextlib.suppress(RuntimeError):  # no group of its own left
                db.run("groupdel", entry.pw_name)
        deleted.append(entry.pw_name)
    return {"deleted": deleted}


PROBE_FIELDS = ("Rss", "Pss")


def _own_memory() -> dict[str, int]:
    """RSS and PSS (kB) of this uid's processes, read as that uid (/proc/<pid>/smaps_rollup
    is closed to root without CAP_SYS_PTRACE, open to the owner)."""
    total = dict.fromkeys(PROBE_FIELDS, 0)
    total["processes"] = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != os.getuid():
                continue
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total["processes"] += 1
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in PROBE_FIELDS:
                total[key] += int(rest.split()[0])
    return total


def _as(uid: int, gid: int) -> dict[str, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            os.write(write, json.dumps(_own_memory()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out or "{}")


def memory(tag: str) -> dict:
    """The node's memory and the tag's participants' RSS/PSS (MB)."""
    meminfo = {line.split(":")[0]: int(line.split()[1]) // 1024
               for line in Path("/proc/meminfo").read_text().splitlines()}
    people = {}
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(f"{PREFIX}{tag}-") and in_range(entry.pw_uid):
            m = _as(entry.pw_uid, entry.pw_gid)
            people[entry.pw_name] = {"rss_mb": m.get("Rss", 0) / 1024,
                                     "pss_mb": m.get("Pss", 0) / 1024,
                                     "processes": m.get("processes", 0)}
    return {"mem_total_mb": meminfo["MemTotal"], "mem_available_mb": meminfo["MemAvailable"],
            "people": people}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("add").add_argument("n", type=int)
    sub.add_parser("memory").add_argument("tag")
    sub.add_parser("remove").add_argument("tag")
    args = parser.parse_args(argv)
    try:
        if args.what == "add":
            out = add(args.n, users_file())
        elif args.what == "memory":
            out = memory(args.tag)
        else:
            out = remove(args.tag, users_file())
    except (ValueError, OSError, RuntimeError) as e:
        print(json.dumps({"error": str(e)}))
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
