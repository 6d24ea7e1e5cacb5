"""The session, exported at the end: every participant's progress and errors, as CSV (one
row per executed cell) and JSON (per participant: progress per lesson, help requests,
and the timeline). Both are streamed: a whole class's day never sits in memory at once.

Participants wrote the text in these files (sources, error messages): the CSV puts a `'`
before anything a spreadsheet would take for a formula (`=HYPERLINK(...)`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import Blueprint, Response

from .auth import AuthGate
from .feedstore import FeedStore
from .helpdesk import HelpDesk
from .lesson import Lessons
from .progress import ClassProgress


class Live(Protocol):
    """What is exported (live.Live has it; named here so neither imports the other)."""

    feed: FeedStore
    lessons: Lessons
    progress: ClassProgress
    help: HelpDesk

    def participants(self) -> list[str]: ...

    def refresh(self) -> None: ...

COLUMNS = ["participant", "at", "lesson", "exercise", "exercise_title", "notebook", "cell_id",
           "execution_count", "ok", "error_name", "error_message", "duration_s",
           "source_head"]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A CSV field a spreadsheet shows as the text it is."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def placed(live: Live, user: str) -> Iterator[dict[str, Any]]:
    """`user`'s executions, oldest first, each with its lesson and exercise."""
    near: dict[str, int] = {}
    for row in live.feed.rows(user=user):
        place = live.progress.place(row, near.get(row.get("path") or "", 0))
        if place is not None and place.step is not None:
            near[row.get("path") or ""] = place.step.index
        exercise = place.exercise if place else None
        yield {**row, "lesson": place.lesson.path if place else None,
               "exercise": exercise + 1 if exercise is not None else None,
               "exercise_title": (place.lesson.exercises[exercise]
                                  if place and exercise is not None else None)}


def csv_lines(live: Live) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for user in live.participants():
        for r in placed(live, user):
            writer.writerow([cell(v) for v in (
                user, r["at"], r["lesson"], r["exercise"], r["exercise_title"], r["path"],
                r["cell"], r["count"], "ok" if r["ok"] else "error", r["error_name"],
                r["error_message"], r["duration"], r["head"])])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def json_parts(live: Live) -> Iterator[str]:
    lessons = live.lessons.all()
    head = {"generated": datetime.now(UTC).isoformat(),
            "lessons": {p: {"title": lsn.title, "exercises": list(lsn.exercises)}
                        for p, lsn in lessons.items()}}
    yield json.dumps(head)[:-1] + ', "participants": ['
    help_by_user: dict[str, list[dict[str, Any]]] = {}
    for entry in live.help.history():
        help_by_user.setdefault(entry["user"], []).append(entry)
    dropped = live.feed.dropped()
    for n, user in enumerate(live.participants()):
        with live.progress.reading() as people:
            person = people.get(user)
            progress = {
                path: {"furthest": p.furthest + 1 if p.furthest >= 0 else None,
                       "of": len(lessons[path].exercises) if path in lessons else None,
                       "reached": [{"exercise": e + 1, "at": w.isoformat()}
                                   for w, e in p.advances]}
                for path, p in (person.lessons.items() if person else [])}
        timeline = [{k: r[k] for k in ("at", "lesson", "exercise", "path", "cell", "count",
                                       "ok", "error_name", "error_message", "duration",
                                       "head")} for r in placed(live, user)]
        entry = {"name": user, "executions": len(timeline),
                 "errors": sum(not r["ok"] for r in timeline), "dropped": dropped.get(user, 0),
                 "lessons": progress, "help": help_by_user.get(user, []),
                 "timeline": timeline}
        yield ("," if n else "") + json.dumps(entry)
    yield "]}\n"


def blueprint(gate: AuthGate, live: Live) -> Blueprint:
    bp = Blueprint("export", __name__)

    def download(body: Iterator[str], mimetype: str, stem: str, ext: str) -> Response:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{stem}-{stamp}.{ext}"')
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/live/export.csv")
    def export_csv():
        gate.api_instructor()
        live.refresh()
        return download(csv_lines(live), "text/csv", "class-executions", "csv")

    @bp.get("/live/export.json")
    def export_json():
        gate.api_instructor()
        live.refresh()
        return download(json_parts(live), "application/json", "class-progress", "json")

    return bp
