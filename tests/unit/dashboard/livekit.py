"""The live class view's test kit: a lesson notebook, batches as a kernel posts them, and
the app with its live view, with participants' homes in a temporary folder."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dashboard import push
from dashboard.lesson import source_hash
from dashboard.live import Live
from workshop.accounts import SystemUser

from .dashapp import ALICE, EVENTS, TEACHER, auth, make_app

LESSON = "day1/lesson.ipynb"
BOB = auth("bob-token")
_seq = itertools.count(1)


def md(source: str, **extra: Any) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": extra.pop("id", f"md{next(_seq)}"),
            "metadata": extra, "source": source}


def code(source: str, cell_id: str, **metadata: Any) -> dict[str, Any]:
    return {"cell_type": "code", "id": cell_id, "metadata": metadata, "source": source,
            "execution_count": None, "outputs": []}


def lesson_cells() -> list[dict[str, Any]]:
    """A lesson of 4 exercises and 8 code cells (c1..c8)."""
    return [md("# Pandas basics"), code("import pandas as pd", "c1"),
            md("## Exercise 1: load"), code("df = pd.read_csv('x.csv')", "c2"),
            code("df.head()", "c3"),
            md("## Exercise 2: select"), code("df['a']", "c4"), code("df.head()", "c5"),
            md("## Exercise 3: plot"), code("df.plot()", "c6"),
            md("## Notes"), md("## Exercise 4: group"), code("df.groupby('a').sum()", "c7"),
            code("df.describe()", "c8")]


def notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def write_lesson(materials: Path, path: str = LESSON,
                 cells: list[dict[str, Any]] | None = None) -> Path:
    file = materials / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(notebook(cells or lesson_cells())))
    return file


def execution(cell: str | None, ok: bool = True, *, seq: int | None = None,
              path: str | None = LESSON, source: str | None = None, error: str = "NameError",
              message: str = "name 'x' is not defined", at: str | None = None
              ) -> dict[str, Any]:
    src = source if source is not None else {c["id"]: c["source"] for c in lesson_cells()
                                             if c["cell_type"] == "code"}.get(cell or "", "x")
    return {"seq": seq or next(_seq), "path": path, "cell": cell, "count": 1, "ok": ok,
            "error": None if ok else {"name": error, "message": message}, "duration": 0.01,
            "at": at or datetime.now(UTC).isoformat(), "head": src.split("\n")[0],
            "source_hash": source_hash(src)}


def batch(user: str, *executions: dict[str, Any], kernel: str = "k1",
          dropped: int = 0) -> dict[str, Any]:
    return {"type": "executions", "user": user, "kernel": kernel, "dropped": dropped,
            "executions": list(executions)}


def run(client, user: str, *executions: dict[str, Any], headers=None, **kw: Any):
    headers = {"alice": ALICE, "bob": BOB}[user] if headers is None else headers
    return client.post(EVENTS, json=batch(user, *executions, **kw), headers=headers)


def live_of(app: Flask) -> Live:
    return app.extensions["dashboard"]["live"]


def board(client, **query: str) -> dict[str, Any]:
    r = client.get("/services/dashboard/live/api/board", query_string=query, headers=TEACHER)
    assert r.status_code == 200, r.json
    return r.json


def tile(data: dict[str, Any], user: str) -> dict[str, Any]:
    return next(p for p in data["participants"] if p["name"] == user)


def own_account(name: str, home_root: Path) -> SystemUser:
    """No system users on the test machine: homes below `home_root`, owned by us (root)."""
    home = Path(home_root) / name
    home.mkdir(parents=True, exist_ok=True)
    return SystemUser(name, os.getuid(), os.getgid(), home, created=False)


def make_live_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app (no background threads), a lesson in its materials, homes in `tmp_path`."""
    monkeypatch.setenv("WORKSHOP_USERS_SYNC_STATUS", str(tmp_path / "state" / "sync.json"))
    monkeypatch.setattr(push, "ensure_system_user", own_account)
    write_lesson(tmp_path / "materials")
    return make_app(tmp_path)


__all__ = ["ALICE", "BOB", "EVENTS", "TEACHER"]
