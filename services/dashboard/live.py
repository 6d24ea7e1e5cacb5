"""The live class view: the execution feed, progress through the lessons, help requests and
pushes, put together for app.py, and the board the instructor watches.

    kernel --executions--> events API --on_event--> FeedStore (SQLite)
                                                 -> ClassProgress (memory) -> board
           --help-------->                       -> HelpDesk (SQLite)      -> board, %help
    board --push--> PushStore (SQLite) -> Pusher -> instructor.ipynb in every home

The board is one JSON document (`board()`), sent to open pages as server-sent events
(stream.py) or polled; the progress chart is an SVG of its own (chart.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, abort, jsonify, render_template, request

from workshop.materials import Ledger
from workshop.roster import RosterFile
from workshop.rosterguard import GuardedRoster
from workshop.syncstatus import last_good_path, status_path

from . import export, helpdesk, push
from .auth import AuthGate
from .chart import progress_svg
from .copies import SavedCopies
from .feed import ExecutionBatch  # noqa: F401  (registers the `executions` event type)
from .feedstore import FeedStore
from .lesson import Lessons
from .pages import page_headers
from .progress import ClassProgress, class_median, stuck
from .servers import Servers
from .settings import Settings
from .stream import Changes, Slots, Stream

log = logging.getLogger(__name__)

# Stuck: the same error this long, or no new exercise this long while the class's median
# is further on. Defaults; the board's two fields change them per page (1-240 minutes).
STUCK_ERROR_MINUTES = 3
BEHIND_MINUTES = 5
TICK = 15  # seconds: the board is redrawn at least this often ("for 4 min" grows)
ROSTER_SECONDS = 2.0  # users.txt is read at most this often for the board
BOARDS_KEPT = 8  # boards kept for other pages asking for the same (lessons x thresholds)


def _minutes(name: str, default: int) -> timedelta:
    value = request.args.get(name, str(default))
    # ASCII digits of a sane length: int() also takes '²', and raises on 5000 digits.
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= 240:
        abort(400, f"{name} must be a number of minutes from 1 to 240")
    return timedelta(minutes=int(value))


class Live:
    def __init__(self, settings: Settings, users: RosterFile, servers: Servers,
                 lab_url: Callable[[str], str] | None, source: Any = None,
                 start_pusher: bool = True) -> None:
        state = settings.state_dir
        self.servers = servers
        self.lab_url = lab_url
        self.changes = Changes()
        self.feed = FeedStore(state / "feed.sqlite")
        self.lessons = Lessons(settings.materials_dir)
        self.progress = ClassProgress(self.lessons, SavedCopies.for_source(source))
        self.help = helpdesk.HelpDesk(state / "help.sqlite", self.changes.bump)
        self.pushes = push.PushStore(state / "push.sqlite")
        self._guarded = GuardedRoster(users, last_good_path(status_path()))
        self._roster: tuple[float, list[str], frozenset[str]] = (0.0, [], frozenset())
        self._refresh_lock = threading.Lock()
        self._boards: dict[tuple[Any, ...], dict[str, Any]] = {}  # the latest, by version
        self._boards_lock = threading.Lock()
        self.pusher = push.Pusher(self.pushes, self.participants, settings.home_root,
                                  Ledger(state / "pushes"), self.changes.bump)
        if start_pusher:
            self.pusher.start()
        self.refresh()

    # -- keeping up -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild progress when a lesson changed (and at start)."""
        self.lessons.all()
        if self.progress.lessons_version != self.lessons.version:
            with self._refresh_lock:
                if self.progress.lessons_version != self.lessons.version:
                    self.progress.rebuild(self.feed.rows())
                    self.changes.bump()

    def on_event(self, event: dict[str, Any]) -> None:
        """The events API's listener: a stored `executions` or `help` event."""
        if event["type"] == "executions":
            for row in self.feed.add(event):
                self.progress.add(row)
            self.changes.bump()
        elif event["type"] == "help":
            if event["action"] == "cancel":
                self.help.cancel(event["user"])
                return
            with self.progress.reading() as people:
                person = people.get(event["user"])
                last_error = dict(person.last_error) if person and person.last_error else None
            self.help.ask(event["user"], event["message"], event.get("path"), last_error)

    def participants(self) -> list[str]:
        """The class in force (users.txt, or its last good version), without instructors,
        and anyone else who ran cells (removed since, or an instructor trying things)."""
        at, names, instructors = self._roster
        if time.monotonic() - at > ROSTER_SECONDS:
            roster = self._guarded.current().roster
            names = sorted(roster.participants) if roster else names
            instructors = roster.instructors if roster else instructors
            self._roster = (time.monotonic(), names, instructors)
        with self.progress.reading() as people:
            ran = set(people)
        return sorted(set(names) | (ran - instructors))

    # -- the board ------------------------------------------------------------------------
    def version(self, lesson: str | None) -> str:
        states = hash(tuple(sorted((self.servers.states() or {}).items()))) & 0xFFFFFF
        tick = int(time.time() // TICK)
        return f"{self.changes.version}-{self.lessons.version}-{lesson}-{states}-{tick}"

    def choose(self, lesson: str | None) -> str | None:
        lessons = self.lessons.all()
        if lesson in lessons:
            return lesson
        with self.progress.reading() as people:
            counts = {path: sum(path in p.lessons for p in people.values()) for path in lessons}
        return max(sorted(counts), key=lambda p: counts[p]) if counts else None

    def board(self, lesson: str | None, error_after: timedelta,
              behind_after: timedelta) -> dict[str, Any]:
        """The board for one lesson and thresholds; computed once per version however many
        pages (streams and pollers) ask for it."""
        self.refresh()
        version = self.version(lesson)
        key = (version, lesson, error_after, behind_after)
        with self._boards_lock:
            if key in self._boards:
                return self._boards[key]
        data = self._board(version, lesson, error_after, behind_after)
        with self._boards_lock:
            self._boards[key] = data
            while len(self._boards) > BOARDS_KEPT:
                self._boards.pop(next(iter(self._boards)))
        return data

    def _board(self, version: str, lesson: str | None, error_after: timedelta,
               behind_after: timedelta) -> dict[str, Any]:
        path = self.choose(lesson)
        current = self.lessons.all().get(path or "")
        n = len(current.exercises) if current else 0
        names = self.participants()
        states = self.servers.states()
        dropped = self.feed.dropped()
        now = datetime.now(UTC)
        rows, histogram, not_started = [], [0] * n, 0
        with self.progress.reading() as people:
            median = class_median((people[u] for u in names if u in people), path or "")
            for name in names:
                person = people.get(name)
                progress = person.lessons.get(path or "") if person else None
                furthest = progress.furthest if progress else -1
                if furthest >= 0:
                    histogram[min(furthest, n - 1)] += 1
                else:
                    not_started += 1
                rows.append({
                    "name": name, "exercise": furthest if furthest >= 0 else None,
                    "current": progress.current if progress else None,
                    "states": [progress.states.get(k, "") if progress else "" for k in range(n)],
                    "last": dict(person.last) if person and person.last else None,
                    "executions": person.executions if person else 0,
                    "errors": person.errors if person else 0,
                    "stuck": stuck(person, path or "", median, now, error_after=error_after,
                                   behind_after=behind_after) if person and path else None,
                    "server": None if states is None else states.get(name, ""),
                    "lab": self.lab_url(name) if self.lab_url else None,
                    "dropped": dropped.get(name, 0),
                })
        lessons = self.lessons.all()
        return {
            "version": version, "now": now.isoformat(),
            "lesson": ({"path": current.path, "title": current.title,
                        "exercises": list(current.exercises)} if current else None),
            "lessons": [{"path": p, "title": lessons[p].title} for p in sorted(lessons)],
            "participants": rows, "histogram": histogram, "not_started": not_started,
            "help": self.help.queue(),
            "thresholds": {"stuck_error": int(error_after.total_seconds() // 60),
                           "behind": int(behind_after.total_seconds() // 60)},
        }

    def chart(self, lesson: str | None) -> str:
        self.refresh()
        path = self.choose(lesson)
        current = self.lessons.all().get(path or "")
        exercises = list(current.exercises) if current else []
        return progress_svg(self.progress.advances(path or ""), len(self.participants()),
                            exercises, datetime.now(UTC))

    # -- wiring -----------------------------------------------------------------------------
    def register(self, app: Flask, gate: AuthGate, prefix: str) -> None:
        for bp in (self.blueprint(gate), helpdesk.blueprint(gate, self.help),
                   push.blueprint(gate, self.pushes, self.pusher, self.changes.bump),
                   export.blueprint(gate, self)):
            app.register_blueprint(bp, url_prefix=prefix)

    def blueprint(self, gate: AuthGate, slots: Slots | None = None) -> Blueprint:
        bp = Blueprint("live", __name__)
        slots = slots or Slots()

        def args() -> tuple[str | None, timedelta, timedelta]:
            return (request.args.get("lesson") or None,
                    _minutes("stuck_error", STUCK_ERROR_MINUTES),
                    _minutes("behind", BEHIND_MINUTES))

        @bp.get("/live")
        def page():
            who = gate.page_instructor()
            if isinstance(who, Response):
                return who
            lesson, error_after, behind_after = args()
            html = render_template("pages/live.html", instructor=who, csrf=gate.csrf_token(),
                                   board=self.board(lesson, error_after, behind_after),
                                   streams=slots.limit)
            return page_headers(Response(html, mimetype="text/html"))

        @bp.get("/live/api/board")
        def api_board():
            gate.api_instructor()
            lesson, error_after, behind_after = args()
            since = request.args.get("since")
            if since is not None and since == self.version(lesson):
                return jsonify(version=since)  # nothing new: the poller keeps what it has
            return jsonify(self.board(lesson, error_after, behind_after))

        @bp.get("/live/stream")
        def stream():
            gate.api_instructor()
            lesson, error_after, behind_after = args()
            if not slots.take():
                # 429, not 503: nothing is wrong with the dashboard, there are just enough
                # streams; the page polls and tries again in a minute.
                abort(429, f"{slots.limit} live streams are open already: this page polls",
                      retry_after=60)
            body = Stream(slots, self.changes, lambda: self.version(lesson),
                          lambda: self.board(lesson, error_after, behind_after))
            response = Response(body, mimetype="text/event-stream")
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events on at once
            return response

        @bp.get("/live/chart.svg")
        def chart():
            gate.api_instructor()
            response = Response(self.chart(request.args.get("lesson") or None),
                                mimetype="image/svg+xml")
            response.headers["Content-Security-Policy"] = "default-src 'none'; style-src " \
                "'unsafe-inline'"
            response.headers["Cache-Control"] = "no-store"
            return response

        @bp.get("/live/api/stats")
        def stats():
            gate.api_instructor()
            return jsonify(executions=self.feed.count(), streams=slots.open,
                           stream_limit=slots.limit, dropped=self.feed.dropped(),
                           help_open=len(self.help.queue()))

        return bp

