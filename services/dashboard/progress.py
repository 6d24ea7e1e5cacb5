"""Where every participant is: their progress through each lesson, built from the feed.

Each execution is placed in a lesson (lesson.py) and moves its participant on: the
furthest exercise they reached (and since when), the state of each exercise (the last
run of a cell in it was ok, or raised), their latest execution, and their current error
streak (the same exception, run after run, since when). Whether someone is stuck is
decided when the board is drawn, with the instructor's thresholds (`stuck`).

Kept in memory, one small record per participant, and rebuilt from the feed store at
start and whenever a lesson changes; updated in place as executions arrive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from .lesson import Lessons, Place

# Advances kept per participant and lesson for the chart: one per exercise reached.
MAX_ADVANCES = 500

CopyPlace = Callable[[str, str, Any, str | None, str | None], int | None]


@dataclass
class LessonProgress:
    furthest: int = -1  # the furthest exercise reached
    since: datetime | None = None  # when they reached it
    current: int | None = None  # the exercise of their latest run in this lesson
    step: int = 0  # their latest step: of two cells with the same source, the next one
    states: dict[int, str] = field(default_factory=dict)  # exercise -> "ok" / "error"
    advances: list[tuple[datetime, int]] = field(default_factory=list)


@dataclass
class Streak:
    name: str
    message: str
    since: datetime
    runs: int = 1


@dataclass
class Participant:
    name: str
    last: dict[str, Any] | None = None
    lessons: dict[str, LessonProgress] = field(default_factory=dict)
    streak: Streak | None = None
    last_error: dict[str, Any] | None = None
    executions: int = 0
    errors: int = 0


def _when(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["at"])


class ClassProgress:
    def __init__(self, lessons: Lessons, copy_place: CopyPlace | None = None) -> None:
        self.lessons = lessons
        self.copy_place = copy_place  # the participant's saved copy, for own cells
        self._lock = threading.Lock()  # the state itself: writers and readers
        self._serial = threading.Lock()  # adds and rebuilds, one at a time
        self._people: dict[str, Participant] = {}
        self.version = 0
        self.lessons_version = -1

    # -- placing ------------------------------------------------------------------------
    def place(self, row: dict[str, Any], near: int = 0) -> Place | None:
        place = self.lessons.find(row.get("path"), row.get("cell"), row.get("source_hash"),
                                  near)
        if place is not None and place.step is None and self.copy_place and row.get("path"):
            exercise = self.copy_place(row["user"], row["path"], place.lesson, row.get("cell"),
                                       row.get("source_hash"))
            if exercise is not None:
                return Place(place.lesson, None, exercise)
        return place

    # -- updating -----------------------------------------------------------------------
    def rebuild(self, rows: Iterable[dict[str, Any]]) -> None:
        """Everyone's state again from all executions (at start; after a lesson changed)."""
        with self._serial:
            lessons_version = self.lessons.version
            fresh = ClassProgress(self.lessons, self.copy_place)
            for row in rows:
                fresh.add(row)
            with self._lock:
                self._people = fresh._people
                self.lessons_version = lessons_version
                self.version += 1

    def add(self, row: dict[str, Any]) -> None:
        """Move `row`'s participant on by one execution (a feed store row)."""
        with self._serial:  # one execution at a time, in order, never during a rebuild
            person = self._people.get(row["user"])
            near = 0
            if person and person.last and person.last.get("lesson") in person.lessons:
                near = person.lessons[person.last["lesson"]].step
            # Outside the reading lock: placing may read the participant's saved copy.
            place = self.place(row, near)
            with self._lock:
                person = self._people.setdefault(row["user"], Participant(row["user"]))
                self._apply(person, row, place)
                self.version += 1

    def _apply(self, person: Participant, row: dict[str, Any], place: Place | None) -> None:
        when = _when(row)
        person.executions += 1
        error = ({"name": row["error_name"], "message": row["error_message"] or ""}
                 if not row["ok"] else None)
        person.last = {"at": row["at"], "ok": row["ok"], "error": error, "head": row["head"],
                       "path": row["path"], "cell": row["cell"], "count": row["count"],
                       "duration": row["duration"],
                       "lesson": place.lesson.path if place else None,
                       "exercise": place.exercise if place else None,
                       "own": place is None or place.step is None}
        if error:
            person.errors += 1
            person.last_error = {**error, "at": row["at"], "path": row["path"],
                                 "head": row["head"]}
            s = person.streak
            if s and (s.name, s.message) == (error["name"], error["message"]):
                s.runs += 1
            else:
                person.streak = Streak(error["name"], error["message"], when)
        else:
            person.streak = None
        if place is None or place.exercise is None:
            return
        progress = person.lessons.setdefault(place.lesson.path, LessonProgress())
        progress.current = place.exercise
        if place.step is not None:
            progress.step = place.step.index
        progress.states[place.exercise] = "ok" if row["ok"] else "error"
        if place.exercise > progress.furthest:
            progress.furthest, progress.since = place.exercise, when
            if len(progress.advances) < MAX_ADVANCES:
                progress.advances.append((when, place.exercise))

    # -- reading ------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[dict[str, Participant]]:
        """Everyone's state, unchanging while the block runs (keep it short: executions
        wait). Read only."""
        with self._lock:
            yield self._people

    def advances(self, lesson: str) -> dict[str, list[tuple[datetime, int]]]:
        with self._lock:
            return {name: list(p.lessons[lesson].advances)
                    for name, p in self._people.items() if lesson in p.lessons}


def stuck(person: Participant, lesson: str, class_median: float | None, now: datetime, *,
          error_after: timedelta, behind_after: timedelta) -> dict[str, Any] | None:
    """Why `person` looks stuck, or None: the same error for `error_after`, or no new
    exercise for `behind_after` while the class's median is further on."""
    s = person.streak
    if s is not None and now - s.since >= error_after:
        return {"reason": "error", "since": s.since.isoformat(), "runs": s.runs,
                "text": f"{s.name} for {_minutes(now - s.since)}"}
    progress = person.lessons.get(lesson)
    furthest = progress.furthest if progress else -1
    if class_median is None or furthest >= class_median:
        return None
    since = progress.since if progress and progress.since else None
    if since is None or now - since >= behind_after:
        text = (f"no new exercise for {_minutes(now - since)}" if since
                else "has not started")
        return {"reason": "behind", "since": since.isoformat() if since else None,
                "text": text}
    return None


def class_median(people: Iterable[Participant], lesson: str) -> float | None:
    """The median furthest exercise of those who started `lesson` (None: nobody)."""
    reached = [p.lessons[lesson].furthest for p in people if lesson in p.lessons]
    return median(reached) if reached else None


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
