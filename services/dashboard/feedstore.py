"""Every executed cell the kernels reported, in SQLite: a restart of the dashboard loses
none, and a batch posted twice (its answer was lost) is stored once, by (user, kernel, seq).

Rows are plain facts from the kernel (what ran, where, ok or which error, when); where it
sits in a lesson is worked out when read (lesson.py), so a lesson edited during the class
places old executions by the new lesson too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .sqlitedb import open_store

# A participant's executions kept at most. A busy day is a few hundred to a couple of
# thousand; a loop of run_cell posting as fast as the rate allows reaches this in a few
# minutes, and then costs only its own oldest rows (the newest show where they are).
MAX_PER_USER = 5000
PRUNE_SLACK = 500  # deleted in steps of this many, not one row per insert
# Kernels remembered per participant (their `dropped` counts): every kernel start is one.
MAX_KERNELS_PER_USER = 200

COLUMNS = ("id", "user", "kernel", "seq", "at", "received", "path", "cell", "count", "ok",
           "error_name", "error_message", "duration", "head", "source_hash")


class FeedStore:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS executions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        user          TEXT NOT NULL,
        kernel        TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        at            TEXT NOT NULL,
        received      TEXT NOT NULL,
        path          TEXT,
        cell          TEXT,
        count         INTEGER,
        ok            INTEGER NOT NULL,
        error_name    TEXT,
        error_message TEXT,
        duration      REAL,
        head          TEXT NOT NULL,
        source_hash   TEXT,
        UNIQUE (user, kernel, seq)
    );
    CREATE INDEX IF NOT EXISTS executions_by_user ON executions (user, id);
    CREATE TABLE IF NOT EXISTS kernels (
        user      TEXT NOT NULL,
        kernel    TEXT NOT NULL,
        dropped   INTEGER NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (user, kernel)
    );
    """

    def __init__(self, path: str | Path, *, max_per_user: int = MAX_PER_USER,
                 max_kernels: int = MAX_KERNELS_PER_USER) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_per_user = max_per_user
        self.max_kernels = max_kernels
        self._lock = threading.Lock()
        self._db = open_store(self.path, self.SCHEMA, synchronous_normal=True)
        self._counts: dict[str, int] = dict(self._db.execute(
            "SELECT user, COUNT(*) FROM executions GROUP BY user").fetchall())
        # (user, kernel) -> the drop count stored: unchanged counts are not written again.
        self._kernels: dict[tuple[str, str], int] = {
            (u, k): d for u, k, d in self._db.execute(
                "SELECT user, kernel, dropped FROM kernels").fetchall()}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, batch: dict[str, Any], received: datetime | None = None
            ) -> list[dict[str, Any]]:
        """Store a validated `executions` batch (as the events store returned it); returns
        the executions that were new, as rows, oldest first."""
        when = (received or datetime.now(UTC)).astimezone(UTC).isoformat()
        user, kernel = batch["user"], batch["kernel"]
        records = batch["executions"]
        insert = (f"INSERT INTO executions ({', '.join(COLUMNS[1:])}) "
                  f"VALUES ({', '.join('?' * (len(COLUMNS) - 1))}) "
                  "ON CONFLICT (user, kernel, seq) DO NOTHING RETURNING id")
        rows = []
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for r in records:
                error = r.get("error") or {}
                row = {"user": user, "kernel": kernel, "seq": r["seq"],
                       "at": r.get("at") or when, "received": when, "path": r.get("path"),
                       "cell": r.get("cell"), "count": r.get("count"), "ok": bool(r["ok"]),
                       "error_name": error.get("name"), "error_message": error.get("message"),
                       "duration": r.get("duration"), "head": r.get("head") or "",
                       "source_hash": r.get("source_hash")}
                new = self._db.execute(insert, [row[c] for c in COLUMNS[1:]]).fetchone()
                if new is not None:  # else: stored before (a batch posted again)
                    rows.append({**row, "id": new[0]})
            dropped = int(batch.get("dropped") or 0)
            if self._kernels.get((user, kernel)) != dropped:  # only what changed is written
                self._db.execute(
                    """INSERT INTO kernels (user, kernel, dropped, last_seen) VALUES (?, ?, ?, ?)
                       ON CONFLICT (user, kernel) DO UPDATE SET
                       dropped = MAX(dropped, excluded.dropped), last_seen = excluded.last_seen""",
                    (user, kernel, dropped, when))
                if (user, kernel) not in self._kernels:
                    self._forget_kernels(user)
                self._kernels[(user, kernel)] = dropped
            self._prune(user, len(rows))
        return rows

    def _prune(self, user: str, added: int) -> None:
        count = self._counts.get(user, 0) + added
        if count > self.max_per_user + PRUNE_SLACK:
            self._db.execute(
                """DELETE FROM executions WHERE id IN (SELECT id FROM executions
                   WHERE user = ? ORDER BY id LIMIT ?)""", (user, count - self.max_per_user))
            count = self.max_per_user
        self._counts[user] = count

    def _forget_kernels(self, user: str) -> None:
        """A new kernel of `user`: their oldest are forgotten past `max_kernels`."""
        gone = self._db.execute(
            """DELETE FROM kernels WHERE user = ? AND kernel NOT IN (SELECT kernel FROM
               kernels WHERE user = ? ORDER BY last_seen DESC LIMIT ?) RETURNING kernel""",
            (user, user, self.max_kernels)).fetchall()
        for (kernel,) in gone:
            self._kernels.pop((user, kernel), None)

    def rows(self, user: str | None = None, after: int = 0,
             batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Executions oldest first (of `user`, or everyone's), read in batches so a
        whole class's day never sits in memory at once."""
        while True:
            where, params = "id > ?", [after]
            if user is not None:
                where += " AND user = ?"
                params.append(user)
            with self._lock:
                found = self._db.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM executions WHERE {where} "
                    "ORDER BY id LIMIT ?", [*params, batch]).fetchall()
            for values in found:
                row = dict(zip(COLUMNS, values, strict=True))
                row["ok"] = bool(row["ok"])
                yield row
            if len(found) < batch:
                return
            after = found[-1][0]

    def dropped(self) -> dict[str, int]:
        """What each participant's kernels reported they could not deliver, summed."""
        with self._lock:
            return dict(self._db.execute(
                "SELECT user, SUM(dropped) FROM kernels GROUP BY user").fetchall())

    def count(self) -> int:
        with self._lock:
            return sum(self._counts.values())
