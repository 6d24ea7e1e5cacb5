"""`instructor.ipynb`: the cells the instructor pushed, in every participant's home.

The dashboard owns one notebook: every pushed snippet is a cell of it, in order. Each
push delivers its new version to every home, and never over a participant's edits:

- no file of ours there yet: it is created (a file of the participant's own at that name
  is left alone: ours goes beside it);
- the file we delivered last time, unchanged (its digest is what this participant's
  ledger says we wrote): replaced by the new version;
- changed by the participant (they ran it, typed in it and saved, or put something else
  there): left alone; the new version arrives as `instructor (updated).ipynb` (or
  `(updated 2)`...), and later pushes replace that one while it stays unchanged.

Files are written as the participant (like the hand-out's tar, workshop/materials.py): a
helper forks a child per participant that drops to their uid before it compares and
replaces in one step. A symlink planted at the name is replaced, never followed, and a
save by the participant between our check and our write is the only (microseconds wide)
window.

A participant who has the notebook open sees the new cells after reopening it (or File >
Reload Notebook from Disk); JupyterLab does not reload an unmodified notebook by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workshop.accounts import SystemUser
from workshop.materials import Ledger, updated_name

NAME = "instructor.ipynb"
WRITE_TIMEOUT = 10  # seconds for one participant's write: a stuck filesystem is theirs

_INTRO = ("# From your instructor\n\nSnippets your instructor sends during the class arrive "
          "here, newest at the bottom. While you have not changed this file it is replaced "
          "with each new version; once you have, new versions arrive next to it as "
          "`instructor (updated).ipynb`, and yours stays as it is.")

# Run as root once per round of deliveries: for each participant it forks a child that
# drops to their uid and gid (no other groups) before it touches their home, and compares
# and replaces there. A process per participant would cost a Python start each (40-300
# ms on a busy machine: seconds for a class); a fork costs a millisecond or two.
# argv: seconds one participant may take. stdin: a JSON line {"jobs": [[home, name,
# expected digest ('' = must not exist yet), uid, gid], ...]}, then the content.
# stdout: a JSON line per job, in order: {"outcome": created|replaced|changed|exists}
# or {"error": why}.
_HELPER = r"""
import hashlib, json, os, select, signal, stat, sys, time
head, content = sys.stdin.buffer.read().split(b"\n", 1)
timeout = float(sys.argv[1])

def digest(name):
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return "not a file"
        return hashlib.sha256(f.read()).hexdigest()

def swap(name, expected):
    current = None
    if os.path.lexists(name):
        try:
            current = digest(name)
        except OSError:
            current = "unreadable"
        if not expected or current != expected:
            return "changed" if expected else "exists"
    tmp = f".instructor.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        if current is None:
            try:
                os.link(tmp, name)  # never replaces: a file that appeared meanwhile stays
            except FileExistsError:
                return "exists"
            return "created"
        os.replace(tmp, name)  # the name itself: a symlink there is replaced, not followed
        return "replaced"
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)

for home, name, expected, uid, gid in json.loads(head)["jobs"]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.chdir(home)
            answer = {"outcome": swap(name, expected)}
        except BaseException as e:
            answer = {"error": f"{type(e).__name__}: {e}"[:300]}
        os.write(w, json.dumps(answer).encode())
        os._exit(0)
    os.close(w)
    deadline, data = time.monotonic() + timeout, b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            data = b'{"error": "took too long"}'
            break
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    sys.stdout.write((data.decode() or '{"error": "no answer"}') + "\n")
    sys.stdout.flush()
"""


def notebook(pushes: list[dict[str, Any]]) -> bytes:
    """The instructor's notebook holding `pushes` (oldest first), as nbformat 4.5 JSON.
    The same pushes give the same bytes: a digest says whether a file is ours."""
    cells: list[dict[str, Any]] = [
        {"cell_type": "markdown", "id": "instructor-intro", "metadata": {}, "source": _INTRO}]
    for p in pushes:
        cell: dict[str, Any] = {"cell_type": p["kind"], "id": f"push-{p['id']}",
                                "metadata": {"workshop": {"push": p["id"], "at": p["at"]}},
                                "source": p["source"]}
        if p["kind"] == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"},
                       "language_info": {"name": "python"}}}
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


Job = tuple[SystemUser, str, str]  # participant, file name, expected digest ('' = new)


def _run(jobs: list[Job], content: bytes) -> list[dict[str, str]]:
    """Carry out `jobs` (each as its participant, see _HELPER); an answer per job."""
    if not jobs:
        return []
    head = json.dumps({"jobs": [[str(u.home), name, expected, u.uid, u.gid]
                                for u, name, expected in jobs]}).encode()
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _HELPER, str(WRITE_TIMEOUT)],
        input=head + b"\n" + content, check=False, capture_output=True,
        timeout=WRITE_TIMEOUT * len(jobs) + 30, env={"LC_ALL": "C.UTF-8", "PATH": os.defpath})
    answers = [json.loads(line) for line in result.stdout.decode().splitlines() if line]
    if len(answers) != len(jobs):
        why = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OSError(why[-1] if why else f"the writer stopped (status {result.returncode})")
    return answers


def _is_our_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def deliver(users: list[SystemUser], content: bytes, ledger: Ledger) -> list[dict[str, Any]]:
    """Bring every participant's copy of the instructor's notebook to `content`; a report
    per participant, in order: created, replaced, beside (theirs was changed), unchanged,
    or failed (with the error)."""
    new = hashlib.sha256(content).hexdigest()
    at = datetime.now(UTC).isoformat()
    reports: dict[str, dict[str, Any]] = {}

    def done(user: SystemUser, name: str, outcome: str) -> None:
        reports[user.name] = {"user": user.name, "file": name, "outcome": outcome, "at": at}
        ledger.save(user.name, {"file": name, "digest": new})

    def failed(user: SystemUser, answer: dict[str, str]) -> None:
        reports[user.name] = {"user": user.name, "outcome": "failed", "at": at,
                              "error": answer.get("error", "not written")}

    with ExitStack() as locks:
        first: list[Job] = []
        for user in users:
            locks.enter_context(ledger.locked(user.name))  # one writer per participant
            given = ledger.load(user.name)
            name, expected = given.get("file", NAME), given.get("digest", "")
            if expected == new and _is_our_file(user.home / name):
                reports[user.name] = {"user": user.name, "file": name, "outcome": "unchanged"}
            else:
                first.append((user, name, expected))
        beside: list[Job] = []
        for (user, name, _), answer in zip(first, _run(first, content), strict=True):
            if answer.get("outcome") in ("changed", "exists"):
                # Theirs now: ours goes beside it, and is the one replaced from now on.
                beside.append((user, updated_name(user.home, NAME), ""))
            elif "outcome" in answer:
                done(user, name, answer["outcome"])
            else:
                failed(user, answer)
        for (user, name, _), answer in zip(beside, _run(beside, content), strict=True):
            if answer.get("outcome") == "created":
                done(user, name, "beside")
            else:
                failed(user, answer if "error" in answer else {"error": f"{name} appeared "
                                                                        "meanwhile"})
    return [reports[user.name] for user in users]
