"""The dashboard's SQLite stores (events, feed, help, push, action log) open their files
one way: one connection shared by the app's threads behind the store's own lock,
autocommit, and WAL so readers never wait for a writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_store(path: str | Path, schema: str, *, synchronous_normal: bool = False
               ) -> sqlite3.Connection:
    """The connection, with `schema` (CREATE ... IF NOT EXISTS) applied.

    `synchronous_normal`: for the stores written on every participant's post (events,
    feed), commits that wait for the disk only at checkpoints; a power cut may lose the
    last moments, never corrupt the file."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    if synchronous_normal:
        db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
