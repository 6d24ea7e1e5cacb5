"""Push to everyone: the instructor writes a snippet (code or markdown) on the board, and
within seconds it is the last cell of `instructor.ipynb` in every participant's home,
running servers included (instructornb.py says how a participant's edits are kept).

Pushes and each participant's last delivery live in SQLite: after a restart, whoever
did not get the latest version gets it. One delivery thread works through the class,
`GROUP` participants at a time; a push that arrives meanwhile is what the rest of the
class gets, as one new version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, jsonify, request

from workshop.accounts import ensure_system_user
from workshop.materials import Ledger

from .auth import AuthGate
from .instructornb import deliver, notebook
from .sqlitedb import open_store

MAX_SOURCE_CHARS = 10_000  # a snippet, not a dataset: ~200 lines, within the 64 KiB form limit
MAX_PUSHES = 300  # a long day pushes tens; the notebook stays a few MB at most
# Participants written by one helper process (instructornb.py), a fork each; a newer push
# is taken up between groups.
GROUP = 25
LISTED = 20  # pushes the board lists

log = logging.getLogger(__name__)


class PushStore:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS pushes (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     TEXT NOT NULL,
        author TEXT NOT NULL,
        kind   TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS deliveries (
        user    TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        at      TEXT NOT NULL,
        file    TEXT,
        outcome TEXT NOT NULL,
        error   TEXT
    );
    """

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = open_store(path, self.SCHEMA)

    def add(self, author: str, kind: str, source: str) -> dict[str, Any]:
        at = datetime.now(UTC).isoformat()
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM pushes").fetchone()
            if count >= MAX_PUSHES:
                raise OverflowError(f"already {count} pushes, the most one class keeps")
            cursor = self._db.execute(
                "INSERT INTO pushes (at, author, kind, source) VALUES (?, ?, ?, ?)",
                (at, author, kind, source))
        return {"id": cursor.lastrowid, "at": at, "author": author, "kind": kind,
                "source": source}

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, author, kind, source FROM pushes ORDER BY id").fetchall()
        return [dict(zip(("id", "at", "author", "kind", "source"), r, strict=True))
                for r in rows]

    def record(self, version: int, report: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO deliveries (user, version, at, file, outcome, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (report["user"], version, datetime.now(UTC).isoformat(), report.get("file"),
                 report["outcome"], report.get("error")))

    def deliveries(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user, version, at, file, outcome, error FROM deliveries").fetchall()
        return {r[0]: dict(zip(("user", "version", "at", "file", "outcome", "error"), r,
                               strict=True)) for r in rows}


class Pusher:
    """Delivers the latest version to everyone, off the request threads."""

    def __init__(self, store: PushStore, participants: Callable[[], list[str]],
                 home_root: Path, ledger: Ledger,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.participants = participants
        self.home_root = home_root
        self.ledger = ledger
        self.on_change = on_change
        self._wake = threading.Event()
        self._newer = threading.Event()  # a push arrived since this round began
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="push", daemon=True)
        self._thread.start()
        self._wake.set()  # whoever missed the latest version before a restart gets it

    def request(self) -> None:
        self._idle.clear()
        self._newer.set()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """For tests: True once every requested round is done."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.deliver_all()
            except Exception:  # the thread must survive anything: the next push retries
                log.exception("push delivery failed")
            if not self._wake.is_set():
                self._idle.set()

    def deliver_all(self) -> list[dict[str, Any]]:
        """Bring everyone to the latest version; what was done, per delivery.

        A push that arrives during a round ends it after the current group: whoever is
        still waiting gets the newer version straight away, those already served after."""
        reports: list[dict[str, Any]] = []
        tried: set[tuple[str, int]] = set()  # a failure is retried at the next push only
        while True:
            pushes = self.store.all()
            if not pushes:
                return reports
            version, content = pushes[-1]["id"], notebook(pushes)
            done = self.store.deliveries()
            todo = sorted((u for u in self.participants() if (u, version) not in tried and (
                done.get(u, {}).get("version") != version or done[u]["outcome"] == "failed")),
                key=lambda u: done.get(u, {}).get("version", 0))  # the longest waiting first
            if not todo:
                return reports
            self._newer.clear()
            for start in range(0, len(todo), GROUP):
                if self._newer.is_set():
                    break
                group = self._deliver(todo[start:start + GROUP], content, version)
                reports += group
                tried.update((r["user"], version) for r in group)
                self.on_change()

    def _deliver(self, names: list[str], content: bytes, version: int
                 ) -> list[dict[str, Any]]:
        accounts, reports = [], []
        for name in names:
            try:
                accounts.append(ensure_system_user(name, self.home_root))
            except (OSError, ValueError, RuntimeError) as e:  # theirs alone, and said
                reports.append({"user": name, "outcome": "failed", "error": str(e)})
        try:
            reports += deliver(accounts, content, self.ledger)
        except Exception as e:  # the writer itself failed: everyone in the group, retried
            log.exception("push delivery failed")
            reports += [{"user": a.name, "outcome": "failed", "error": str(e) or
                         type(e).__name__} for a in accounts]
        for report in reports:
            self.store.record(version, report)
        return reports


def blueprint(gate: AuthGate, store: PushStore, pusher: Pusher,
              on_change: Callable[[], None]) -> Blueprint:
    bp = Blueprint("push", __name__)

    @bp.post("/live/push")
    def push():
        who = gate.api_instructor()
        gate.check_csrf()
        body = request.get_json(silent=True) if request.is_json else request.form
        if not isinstance(body, dict) and not hasattr(body, "get"):
            abort(400, "send kind and source (JSON or a form)")
        kind, source = body.get("kind", "code"), body.get("source", "")
        if kind not in ("code", "markdown"):
            abort(400, "kind must be code or markdown")
        if not isinstance(source, str) or not source.strip():
            abort(400, "source: write the snippet to send")
        if len(source) > MAX_SOURCE_CHARS:
            abort(413, f"a snippet has at most {MAX_SOURCE_CHARS} characters")
        if "\x00" in source:
            abort(400, "source must be text")
        try:
            entry = store.add(who["name"], kind, source.replace("\r\n", "\n"))
        except OverflowError as e:
            abort(409, str(e))
        pusher.request()
        on_change()
        return jsonify(entry), 202

    @bp.post("/live/push/again")
    def again():
        gate.api_instructor()
        gate.check_csrf()
        pusher.request()
        return jsonify(status="delivering"), 202

    @bp.get("/live/api/push")
    def listing():
        gate.api_instructor()
        pushes = store.all()
        return jsonify(pushes=pushes[-LISTED:], version=pushes[-1]["id"] if pushes else 0,
                       deliveries=store.deliveries())

    return bp
