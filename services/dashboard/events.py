"""Events: what participants' servers report (pydantic models) and where they are kept.

The wire format is the one the original dashboard accepted::

    {"type": "save-notebook", "user": "alice", "filename": "intro.ipynb",
     "path": "day1/intro.ipynb", "timestamp": "2026-11-22T10:00:00+00:00"}

Other fields are kept as they come (and can be filtered on). An event is identified by
(type, user, path): a new save of the same notebook updates the earlier event and keeps
its id. Events live in SQLite, so a restart of the dashboard loses nothing.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One event as posted. Unknown fields are kept; `timestamp` defaults to now."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    user: str = Field(min_length=1, max_length=64)
    path: str = Field(min_length=1, max_length=1024)
    filename: str | None = Field(default=None, max_length=255)
    timestamp: datetime = Field(default_factory=utcnow)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # A timestamp without a zone is taken as UTC rather than refused: nothing is lost.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_serializer("timestamp")
    def _iso(self, value: datetime) -> str:
        # "+00:00" as Python's isoformat() writes it, like the original service did.
        return value.isoformat()

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        # The dashboard reads the file below the participant's home: never outside it.
        p = PurePosixPath(value)
        if p.is_absolute() or ".." in p.parts or "\\" in value or "\x00" in value:
            raise ValueError("must be a path relative to the home directory, without '..'")
        return str(p)

    @model_validator(mode="after")
    def _complete(self) -> Event:
        if self.type == "save-notebook" and not self.path.endswith(".ipynb"):
            raise ValueError("a save-notebook event needs a path ending in .ipynb")
        if self.filename is None:
            self.filename = PurePosixPath(self.path).name
        return self


def describe(error: ValidationError) -> str:
    """A readable one-line account of what is wrong with a posted event."""
    parts = []
    for e in error.errors():
        where = ".".join(str(x) for x in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


class EventStore:
    """SQLite-backed events, safe to use from the web server's threads."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS events (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        type      TEXT NOT NULL,
        user      TEXT NOT NULL,
        path      TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data      TEXT NOT NULL,
        UNIQUE (type, user, path)
    )
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(self.SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def upsert(self, event: Event) -> dict[str, Any]:
        """Store `event`; the same (type, user, path) updates the row and keeps its id."""
        data = event.model_dump(mode="json")
        with self._lock:
            row = self._db.execute(
                """INSERT INTO events (type, user, path, timestamp, data)
                   VALUES (:type, :user, :path, :timestamp, :data)
                   ON CONFLICT (type, user, path)
                   DO UPDATE SET timestamp = excluded.timestamp, data = excluded.data
                   RETURNING id""",
                {**data, "data": json.dumps(data)},
            ).fetchone()
        return {"id": row[0], **data}

    def query(self, filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Events whose fields equal the given values (as strings), oldest id first."""
        clauses, params = [], []
        for name, value in (filters or {}).items():
            if not FIELD_RE.match(name):
                raise ValueError(f"invalid field name {name!r}")
            if name == "id":
                clauses.append("CAST(id AS TEXT) = ?")
            else:
                # Every field is in the JSON document; compare its text form.
                clauses.append("CAST(json_extract(data, ?) AS TEXT) = ?")
                params.append(f'$."{name}"')
            params.append(value)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, data FROM events{where} ORDER BY id", params
            ).fetchall()
        return [{"id": i, **json.loads(d)} for i, d in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
