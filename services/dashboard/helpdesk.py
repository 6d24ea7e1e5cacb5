"""Help requests: a participant asks (`%help <message>` in their kernel), the instructor sees
a queue on the board and marks each done; the participant sees that it arrived and their
place in the queue.

A request is a `help` event (events API: the participant's own token, their rate, size
and depth limits), so nobody can ask for someone else. Each participant has at most one
open request: asking again changes its message and keeps its place. Participants read
only their own requests (`GET /live/help/mine`); the queue is for instructors.
Requests live in SQLite: a restart loses none.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from flask import Blueprint, abort, jsonify
from pydantic import Field, model_validator

from .auth import AuthGate
from .events import EventBase, HomePath, event_type
from .feed import MAX_MESSAGE_CHARS, Multiline
from .sqlitedb import open_store

# Requests kept per participant, closed ones beyond this are forgotten (oldest first).
MAX_PER_USER = 100
RECENT_SHOWN = 5  # a participant's closed requests they are shown
QUEUE_SHOWN = 200  # open requests the board lists (one per participant at most)


@event_type
class HelpRequest(EventBase):
    """A participant asks for help, or withdraws their open request."""

    type: Literal["help"]
    action: Literal["ask", "cancel"] = "ask"
    message: Annotated[Multiline, Field(max_length=MAX_MESSAGE_CHARS)] = ""
    path: HomePath | None = None

    def key(self) -> str:
        return "request"  # the events store keeps a participant's latest only

    @model_validator(mode="after")
    def _says_something(self) -> HelpRequest:
        if self.action == "ask" and not self.message.strip():
            raise ValueError("a help request needs a message: %help <what you need>")
        return self


def _now() -> str:
    return datetime.now(UTC).isoformat()


class HelpDesk:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS requests (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user       TEXT NOT NULL,
        since      TEXT NOT NULL,
        message    TEXT NOT NULL,
        path       TEXT,
        last_error TEXT,
        status     TEXT NOT NULL,
        closed_at  TEXT,
        closed_by  TEXT
    );
    CREATE INDEX IF NOT EXISTS requests_open ON requests (status, id);
    CREATE INDEX IF NOT EXISTS requests_by_user ON requests (user, id);
    """
    FIELDS = ("id", "user", "since", "message", "path", "last_error", "status", "closed_at",
              "closed_by")

    def __init__(self, path: str | Path, on_change: Callable[[], None] = lambda: None
                 ) -> None:
        self.on_change = on_change
        self._lock = threading.Lock()
        self._db = open_store(path, self.SCHEMA)

    def _rows(self, where: str, params: tuple[Any, ...], limit: int) -> list[dict[str, Any]]:
        rows = self._db.execute(f"SELECT {', '.join(self.FIELDS)} FROM requests "
                                f"WHERE {where} LIMIT ?", (*params, limit)).fetchall()
        entries = [dict(zip(self.FIELDS, row, strict=True)) for row in rows]
        for e in entries:
            e["last_error"] = json.loads(e["last_error"]) if e["last_error"] else None
        return entries

    def ask(self, user: str, message: str, path: str | None,
            last_error: dict[str, Any] | None) -> dict[str, Any]:
        error = json.dumps(last_error) if last_error else None
        with self._lock, self._db:
            self._db.execute("BEGIN")
            (open_id,) = self._db.execute(
                "SELECT MAX(id) FROM requests WHERE user = ? AND status = 'open'",
                (user,)).fetchone()
            if open_id is None:
                self._db.execute(
                    "INSERT INTO requests (user, since, message, path, last_error, status) "
                    "VALUES (?, ?, ?, ?, ?, 'open')", (user, _now(), message, path, error))
                self._db.execute(
                    """DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE
                       user = ? AND status != 'open' ORDER BY id DESC LIMIT -1 OFFSET ?)""",
                    (user, MAX_PER_USER - 1))
            else:  # asking again: a new message, the same place in the queue
                self._db.execute("UPDATE requests SET message = ?, path = ?, last_error = ? "
                                 "WHERE id = ?", (message, path, error, open_id))
        self.on_change()
        return self.mine(user)

    def _close(self, where: str, params: tuple[Any, ...], status: str, by: str) -> int:
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE requests SET status = ?, closed_at = ?, closed_by = ? "
                f"WHERE status = 'open' AND {where}", (status, _now(), by, *params))
        if cursor.rowcount:
            self.on_change()
        return cursor.rowcount

    def cancel(self, user: str) -> dict[str, Any]:
        self._close("user = ?", (user,), "cancelled", user)
        return self.mine(user)

    def done(self, request_id: int, instructor: str) -> dict[str, Any] | None:
        """Mark a request done (again is fine); None when there is no such request."""
        self._close("id = ?", (request_id,), "done", instructor)
        with self._lock:
            found = self._rows("id = ?", (request_id,), 1)
        return found[0] if found else None

    def queue(self) -> list[dict[str, Any]]:
        """Open requests, longest waiting first, each with its place (from 1)."""
        with self._lock:
            entries = self._rows("status = 'open' ORDER BY id", (), QUEUE_SHOWN)
        for place, e in enumerate(entries, 1):
            e["position"] = place
        return entries

    def mine(self, user: str) -> dict[str, Any]:
        """What a participant may know: their open request and place, their last ones."""
        queue = self.queue()
        own = next((e for e in queue if e["user"] == user), None)
        with self._lock:
            recent = self._rows("user = ? AND status != 'open' ORDER BY id DESC", (user,),
                                RECENT_SHOWN)
        if own is not None:
            own = {**own, "waiting": len(queue)}
        return {"open": own, "recent": recent}

    def history(self) -> list[dict[str, Any]]:
        """Every request kept, oldest first (the export)."""
        with self._lock:
            return self._rows("1 ORDER BY id", (), 10**6)


def blueprint(gate: AuthGate, desk: HelpDesk) -> Blueprint:
    bp = Blueprint("helpdesk", __name__)

    @bp.get("/live/help/mine")
    def mine():
        """A participant's own requests (their kernel's `%help` asks): nobody else's."""
        return jsonify(desk.mine(gate.api_user()["name"]))

    @bp.get("/live/api/help")
    def queue():
        gate.api_instructor()
        return jsonify(desk.queue())

    @bp.post("/live/help/<request_id>/done")
    def done(request_id: str):
        who = gate.api_instructor()
        gate.check_csrf()
        if not re.fullmatch(r"[0-9]{1,18}", request_id):
            abort(400, "a request id is a whole number")
        entry = desk.done(int(request_id), who["name"])
        if entry is None:
            abort(404, f"no help request {request_id}")
        return jsonify(entry)

    return bp
