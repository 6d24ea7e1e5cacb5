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

Files are written by a small program running as the participant (like the hand-out's tar,
workshop/materials.py), which compares and replaces in one step: a symlink planted at the
name is replaced, never followed, and a save by the participant between our check and our
write is the only (microseconds wide) window.

A participant who has the notebook open sees the new cells after reopening it (or File >
Reload Notebook from Disk); JupyterLab does not reload an unmodified notebook by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from workshop.accounts import SystemUser
from workshop.materials import Ledger, _updated_name

NAME = "instructor.ipynb"
WRITE_TIMEOUT = 20  # seconds for one participant's write: a stuck filesystem is theirs

_INTRO = ("# From your instructor\n\nSnippets your instructor sends during the class arrive "
          "here, newest at the bottom. While you have not changed this file it is replaced "
          "with each new version; once you have, new versions arrive next to it as "
          "`instructor (updated).ipynb`, and yours stays as it is.")

# Runs as the participant: argv = home, name, expected digest ('' = must not exist yet);
# the new content on stdin. Prints one word: created, replaced, changed, exists.
_SWAP = r"""
import hashlib, os, sys, tempfile
home, name, expected = sys.argv[1:4]
data = sys.stdin.buffer.read()
os.chdir(home)
def digest(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not __import__("stat").S_ISREG(os.fstat(f.fileno()).st_mode):
            return "not a file"
        return hashlib.sha256(f.read()).hexdigest()
current = None
if os.path.lexists(name):
    try:
        current = digest(name)
    except OSError:
        current = "unreadable"
    if not expected or current != expected:
        print("changed" if expected else "exists")
        sys.exit(0)
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(name) or ".", prefix=".instructor.")
try:
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    if current is None:
        try:
            os.link(tmp, name)  # never replaces: a file that appeared meanwhile stays
        except FileExistsError:
            print("exists")
            sys.exit(0)
        print("created")
    else:
        os.replace(tmp, name)
        print("replaced")
finally:
    if os.path.lexists(tmp):
        os.unlink(tmp)
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


def _swap(user: SystemUser, name: str, content: bytes, expected: str) -> str:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _SWAP, str(user.home), name, expected],
        input=content, user=user.uid, group=user.gid, extra_groups=[], check=False,
        capture_output=True, timeout=WRITE_TIMEOUT,
        env={"LC_ALL": "C.UTF-8", "PATH": os.defpath})
    word = result.stdout.decode("utf-8", "replace").strip()
    if result.returncode != 0 or word not in ("created", "replaced", "changed", "exists"):
        why = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OSError(why[-1] if why else f"exit status {result.returncode}")
    return word


def deliver(user: SystemUser, content: bytes, ledger: Ledger) -> dict[str, Any]:
    """Bring `user`'s copy of the instructor's notebook to `content`; what happened."""
    new = hashlib.sha256(content).hexdigest()
    with ledger.locked(user.name):
        given = ledger.load(user.name)
        target, expected = given.get("file", NAME), given.get("digest", "")
        if expected == new and os.path.isfile(user.home / target) and not os.path.islink(
                user.home / target):
            return {"user": user.name, "file": target, "outcome": "unchanged"}
        outcome = _swap(user, target, content, expected)
        if outcome in ("changed", "exists"):
            # Theirs now: ours goes beside it, and is the one replaced from now on.
            target = _updated_name(user.home, NAME)
            outcome = _swap(user, target, content, "")
            if outcome != "created":
                raise OSError(f"{target} appeared while it was being written")
            outcome = "beside"
        ledger.save(user.name, {"file": target, "digest": new})
    return {"user": user.name, "file": target, "outcome": outcome,
            "at": datetime.now(UTC).isoformat()}
