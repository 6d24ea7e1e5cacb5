"""One executed cell as the record the dashboard receives (the wire format of a batch's
`executions`; the dashboard's side is services/dashboard/feed.py).

    {"seq": 17, "path": "day1/intro.ipynb", "cell": "a1b2c3d4", "count": 5, "ok": false,
     "error": {"name": "NameError", "message": "name 'x' is not defined"},
     "duration": 0.0123, "at": "2026-11-22T10:00:00.123456+00:00",
     "head": "print(x)", "source_hash": "9f86d081884c7d65"}

Built on the kernel's thread right after the cell, so it must be cheap (no I/O, no
formatting of tracebacks) and must never raise: whatever the participant's exception does
in its `__str__`, the record says so and moves on.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime
from typing import Any

# What of a cell's source the board shows: enough to recognise the cell, no more. The
# dashboard refuses longer ones (feed.py), so these are the contract, not a taste.
HEAD_LINES = 3
HEAD_LINE_CHARS = 120
HEAD_CHARS = 240
# An exception's message (some are pages long: a pandas KeyError lists every column).
MESSAGE_CHARS = 240
NAME_CHARS = 120
CELL_ID_CHARS = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but newline and tab


def source_hash(source: str) -> str:
    """The cell's exact source, hashed: how the dashboard recognises a lesson's cell whose
    id changed (copied, or run from a frontend that sends none). The dashboard hashes the
    lesson's cells the same way (lesson.py): sha256 of the UTF-8 text, 16 hex digits."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def head(source: str) -> str:
    # A pasted 10 MB cell is cut before it is split: only its start can be shown.
    lines = source[:HEAD_LINES * (HEAD_LINE_CHARS + 1) * 4].strip("\n").splitlines()[:HEAD_LINES]
    text = "\n".join(line.rstrip()[:HEAD_LINE_CHARS] for line in lines)
    return text[:HEAD_CHARS]


def _printable(text: str, limit: int) -> str:
    # The dashboard refuses control characters other than newline and tab.
    text = _CONTROL.sub(" ", text[:limit])
    return text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates


def describe_error(error: BaseException | None) -> dict[str, str] | None:
    if error is None:
        return None
    name = type(error).__name__
    try:
        message = str(error)
    except Exception:  # a participant's exception class may do anything in __str__
        message = "(the exception's message could not be read)"
    return {"name": _printable(name, NAME_CHARS) or "Exception",
            "message": _printable(message, MESSAGE_CHARS)}


def notebook_path(session_name: str | None, home: str) -> str | None:
    """The notebook's path below the participant's home, from JPY_SESSION_NAME (which
    jupyter_server sets to the session's path when it starts the kernel), or None."""
    if not session_name:
        return None
    if not os.path.isabs(session_name):
        path = os.path.normpath(session_name)
    else:
        try:
            path = os.path.relpath(session_name, home)
        except ValueError:
            return None
    if path.startswith("..") or os.path.isabs(path) or path == ".":
        return None
    return path.replace(os.sep, "/")


def cell_id(info: Any, parent: dict[str, Any] | None) -> str | None:
    """The frontend's id of the executed cell: IPython passes it along (ipykernel 7 with
    IPython 9); older pairs only have it in the request's metadata (`cellId`)."""
    value = getattr(info, "cell_id", None)
    if not value and parent:
        metadata = parent.get("metadata") or {}
        value = metadata.get("cellId") if isinstance(metadata, dict) else None
    if not isinstance(value, str) or not value:
        return None
    return value[:CELL_ID_CHARS] if value.replace("-", "").replace("_", "").isalnum() else None


def build(*, result: Any, duration: float, path: str | None,
          parent: dict[str, Any] | None) -> dict[str, Any]:
    """The record of one finished cell (`result`: IPython's ExecutionResult)."""
    info = result.info
    source = getattr(info, "raw_cell", None) or ""
    error = result.error_before_exec or result.error_in_exec
    return {  # "seq" is added by the sender
        "path": path,
        "cell": cell_id(info, parent),
        "count": result.execution_count if isinstance(result.execution_count, int) else None,
        "ok": error is None,
        "error": describe_error(error),
        "duration": round(max(0.0, duration), 6),
        "at": datetime.now(UTC).isoformat(),
        "head": _printable(head(source), HEAD_CHARS),
        "source_hash": source_hash(source),
    }
