"""The hub's SQLite database in WAL mode: commits that do not stall the hub.

JupyterHub talks to its database from its one event loop, synchronously: while a commit
waits for the disk, no page, login or proxied request of anybody is served. A class
logging in at once makes hundreds of commits (logins, tokens, OAuth clients and codes,
servers, activity). SQLite's default journal costs two or three fsyncs per commit, 3-5 ms
each on the test machine's volume; in WAL mode with synchronous=NORMAL a commit writes
the log without waiting for the disk, 0.03 ms (measured in the image on the hub's state
volume; see the Readme's capacity notes). What it gives up: after a power cut or a crash
of the node (not of the hub), the last moments' changes may be lost (a login, a token);
the database is never corrupted, and the class logs in again.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        for pragma in PRAGMAS:
            cursor.execute(pragma)
        cursor.close()


def use_wal() -> None:
    """Every SQLite connection this process opens from now on (the hub's) uses WAL."""
    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)
