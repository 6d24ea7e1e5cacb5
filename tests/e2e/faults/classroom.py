"""A class of participants for the fault suite and its benchmark, driven from outside.

Thirty or fifty real JupyterLab servers do not fit on a 2-core machine shared with other
work, so most participants here "save" the way their server's save hook would, without
a server: the notebook is written into their home as their own uid (a temporary file
renamed into place, as Jupyter writes it), then a `save-notebook` event is posted with
their own hub token (minted with `POST /hub/api/users/<name>/tokens` after a real login)
to the address the save hook uses. Only the monster comes from a real server.

The board is read as the instructor's open page reads it: `/api/summary/<path>` through
the proxy with an instructor's token.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.e2e.hubclient import HubSession, within
from workshop.addresses import Addresses


def password(name: str) -> str:
    return f"{name}-pw"


def users_txt(participants: Iterable[str], instructors: Iterable[str]) -> str:
    lines = [f"{name}:{password(name)}" for name in participants]
    lines += ["[instructors]", *(f"{name}:{password(name)}" for name in instructors)]
    return "# fault suite\n" + "\n".join(lines) + "\n"


def notebook(marker: str, cells: int = 2) -> dict[str, Any]:
    """A small executed notebook whose last cell prints `marker` (found on the board)."""
    body = [{"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# Day one"}]
    for n in range(1, cells):
        body.append({"cell_type": "code", "id": f"c{n}", "execution_count": n,
                     "metadata": {}, "source": f"print('{marker}')",
                     "outputs": [{"output_type": "stream", "name": "stdout",
                                  "text": f"{marker}\n"}]})
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": body}


def save_event(user: str, path: str) -> dict[str, Any]:
    return {"type": "save-notebook", "user": user, "path": path,
            "filename": path.rsplit("/", 1)[-1]}


@dataclass(frozen=True)
class Participant:
    name: str
    token: str
    home: Path  # on this machine (the stack's bind-mounted homes)
    uid: int
    gid: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def write(self, path: str, content: dict[str, Any] | str) -> int:
        """Write a notebook into the home as the participant would own it; its mtime_ns."""
        target = self.home / path
        target.parent.mkdir(parents=True, exist_ok=True)
        for folder in [target.parent, *target.parent.parents]:
            if folder == self.home.parent:
                break
            os.chown(folder, self.uid, self.gid)
        text = content if isinstance(content, str) else json.dumps(content)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".~", suffix=".ipynb")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chown(tmp, self.uid, self.gid)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return target.stat().st_mtime_ns


@dataclass
class Board:
    """The instructor's view of the dashboard, through the proxy."""

    addresses: Addresses
    token: str
    http: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.addresses.service("dashboard", path), params=params,
                             headers={"Authorization": f"token {self.token}",
                                      "Accept": "application/json"}, timeout=30)

    def summary(self, path: str, since: int = -1) -> dict[str, Any]:
        r = self.get(f"api/summary/{path}", since=since)
        r.raise_for_status()
        return r.json()

    def events(self, **filters: str) -> list[dict[str, Any]]:
        r = self.get("events", **filters)
        r.raise_for_status()
        return r.json()


def events_url(addresses: Addresses) -> str:
    """Where participants' save hooks post (etc/jupyterhub/jupyterhub_config.py): the
    dashboard's own loopback port, not the proxy."""
    return f"{addresses.dashboard_url}/services/dashboard/events"


def mint_tokens(names: Iterable[str], addresses: Addresses, workers: int = 4
                ) -> dict[str, str]:
    """Each user logs in through the real form and asks the hub for a token of their own."""

    def one(name: str) -> tuple[str, str]:
        session = HubSession(name, addresses)
        session.login(password(name))
        return name, session.new_token("fault suite")

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, names))


def wait_in_force(board: Board, participants: int, timeout: float = 120) -> None:
    """Until users-sync has put everybody in their group: it makes the accounts first and
    the groups (instructors, participants) after them, and until then an instructor's
    token is a participant's."""

    def in_force() -> bool:
        r = board.get("users")
        return r.status_code == 200 and len(r.json()["participants"]) == participants

    within(timeout, in_force, "users-sync put everybody in their group")


def participants(tokens: dict[str, str], home_root: Path, timeout: float = 120
                 ) -> dict[str, Participant]:
    """Everyone in `tokens` with their home (made by users-sync: waited for) and owner."""
    within(timeout, lambda: all((home_root / n).is_dir() for n in tokens),
           "users-sync made every home")
    found = {}
    for name, token in tokens.items():
        info = (home_root / name).stat()
        found[name] = Participant(name, token, home_root / name, info.st_uid, info.st_gid)
    return found


class Watcher:
    """Polls one notebook's summary like an open page and notes when each participant's
    saved file (its mtime) first shows there. One thread for everybody: thirty pollers
    would measure their own load.

    A save counts as shown once the board shows that file or a later one: the dashboard
    renders the latest file when a participant's turn comes, so a save overtaken by the
    next one before its render may never be shown itself (by design, worker.py)."""

    def __init__(self, board: Board, path: str, interval: float = 0.05) -> None:
        self.board, self.path, self.interval = board, path, interval
        self.cond = threading.Condition()
        self.seen: dict[str, list[tuple[float, float]]] = {}  # user -> [(mtime, first seen)]
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="board-watcher")

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        since = -1
        while not self._stop.is_set():
            try:
                update = self.board.summary(self.path, since)
            except (requests.RequestException, ValueError) as e:
                self.errors.append(f"{type(e).__name__}: {e}")
                time.sleep(self.interval)
                continue
            now = time.monotonic()
            with self.cond:
                for user, facts in update["participants"].items():
                    shown = self.seen.setdefault(user, [])
                    if not shown or shown[-1][0] != facts["mtime"]:
                        shown.append((facts["mtime"], now))
                self.cond.notify_all()
            since = update["version"]
            time.sleep(self.interval)

    def wait_for(self, user: str, mtime_ns: int, timeout: float) -> float | None:
        """When the board first showed `user`'s file of `mtime_ns` or a later one; None if
        not within `timeout`."""
        mtime = mtime_ns / 1e9

        def first() -> float | None:
            return next((at for m, at in self.seen.get(user, []) if m >= mtime), None)

        with self.cond:
            self.cond.wait_for(lambda: first() is not None, timeout)
            return first()
