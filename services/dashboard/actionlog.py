"""What instructors did, when, to whom: kept in SQLite next to the events, listed on the
dashboard. Nothing an instructor does to a participant's server or home goes unrecorded."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .sqlitedb import open_store

# The most entries one listing returns: pages show 15-20; a script reading the log gets
# every recent action without a request able to ask SQLite for a 20-digit LIMIT.
MAX_RECENT = 1000


class ActionLog:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS actions (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        target  TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail  TEXT NOT NULL
    )
    """

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = open_store(path, self.SCHEMA)

    def record(self, actor: str, action: str, target: str, outcome: str,
               detail: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = {"at": datetime.now(UTC).isoformat(), "actor": actor, "action": action,
                 "target": target, "outcome": outcome, "detail": detail or {}}
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO actions (at, actor, action, target, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (entry["at"], actor, action, target, outcome, json.dumps(entry["detail"])))
        return {"id": cursor.lastrowid, **entry}

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest `limit` entries (0 to MAX_RECENT: a negative LIMIT is all of them in
        SQLite, a huge one an OverflowError), newest first."""
        limit = max(0, min(limit, MAX_RECENT))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, actor, action, target, outcome, detail FROM actions "
                "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"id": i, "at": at, "actor": actor, "action": action, "target": target,
                 "outcome": outcome, "detail": json.loads(detail)}
                for i, at, actor, action, target, outcome, detail in rows]
