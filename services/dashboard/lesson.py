"""Lessons: the notebooks in the materials folder, cut into exercises, and where an executed
cell sits in one.

A lesson's exercises are, in order of preference:
1. cells tagged `exercise` (cell metadata `tags`): each starts an exercise;
2. else markdown headings: each heading followed by code starts an exercise (headings
   with no code before the next heading only give the next one its title); code before
   the first heading is an exercise called "Start";
3. else every code cell is an exercise of its own.

Handed-out copies keep nbformat's cell ids, so an execution's cell id finds its step (a
code cell of the lesson). When it does not (the cell was copied, or the frontend sends no
id), the cell's exact source does (`source_hash`, as the kernel computes it), and if that
fails too, the participant's saved copy of the notebook says what comes before the cell
(`place_in_copy`): the nearest lesson cell or heading above it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# A lesson larger than this is not a lesson but a data file that happens to end in .ipynb.
MAX_LESSON_BYTES = 4 * 1024 * 1024
MAX_LESSONS = 100
RESCAN_SECONDS = 2.0  # the materials folder is looked at no more often than this
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
_UPDATED = re.compile(r" \(updated(?: \d+)?\)$")


def source_hash(source: str) -> str:
    """As the kernel extension computes it (etc/ipython/workshop_feed/record.py)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def heading(cell: dict[str, Any]) -> str | None:
    if cell.get("cell_type") != "markdown":
        return None
    m = _HEADING.search(cell_source(cell))
    return m.group(2).strip()[:120] if m else None


@dataclass(frozen=True)
class Step:
    """One code cell of a lesson."""

    index: int  # among the lesson's code cells, from 0
    exercise: int  # its exercise, from 0
    cell_id: str | None
    hash: str


@dataclass(frozen=True)
class Lesson:
    path: str  # below the materials folder (and so below every home)
    title: str
    exercises: tuple[str, ...]  # titles
    steps: tuple[Step, ...]
    headings: dict[str, int] = field(default_factory=dict)  # heading -> exercise
    _by_id: dict[str, int] = field(default_factory=dict, repr=False)
    _by_hash: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def locate(self, cell: str | None, hash_: str | None, near: int = 0) -> Step | None:
        """The step run as `cell` (an id) with source `hash_`; of several with the same
        source (`df.head()` twice), the first at or after step `near`."""
        if cell and cell in self._by_id:
            return self.steps[self._by_id[cell]]
        candidates = self._by_hash.get(hash_ or "", [])
        if not candidates:
            return None
        later = [i for i in candidates if i >= near]
        return self.steps[later[0] if later else candidates[-1]]


def _tagged(cell: dict[str, Any]) -> bool:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return isinstance(tags, list) and "exercise" in tags


def parse_lesson(path: str, notebook: dict[str, Any]) -> Lesson | None:
    """The lesson in `notebook` (nbformat 4 as parsed JSON), or None without code cells."""
    cells = [c for c in notebook.get("cells", []) if isinstance(c, dict)]
    mode = ("tags" if any(_tagged(c) for c in cells)
            else "headings" if any(heading(c) for c in cells) else "cells")
    exercises: list[str] = []
    headings: dict[str, int] = {}
    steps: list[Step] = []
    title: str | None = None  # of the exercise that starts with the next code cell
    starting = True  # the next code cell starts an exercise
    for cell in cells:
        text = heading(cell)
        if (mode == "tags" and _tagged(cell)) or (mode == "headings" and text):
            title, starting = text or _first_line(cell) or title, True
        if text:
            headings.setdefault(text, len(exercises) if starting else len(exercises) - 1)
        if cell.get("cell_type") != "code":
            continue
        if starting or mode == "cells":
            exercises.append(title or (_first_line(cell) if mode == "cells" else "Start"))
            title, starting = None, False
        cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None
        steps.append(Step(len(steps), len(exercises) - 1, cell_id,
                          source_hash(cell_source(cell))))
    if not steps:
        return None
    empty = source_hash("")
    by_hash: dict[str, list[int]] = {}
    for s in steps:
        if s.hash != empty:  # an empty cell is every empty cell
            by_hash.setdefault(s.hash, []).append(s.index)
    first = next((h for h in map(heading, cells) if h), None)
    return Lesson(path=path, title=first or PurePosixPath(path).stem,
                  exercises=tuple(exercises), steps=tuple(steps),
                  headings={h: min(e, len(exercises) - 1) for h, e in headings.items()},
                  _by_id={s.cell_id: s.index for s in steps if s.cell_id},
                  _by_hash=by_hash)


def _first_line(cell: dict[str, Any]) -> str:
    for line in cell_source(cell).splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()[:60]
    return ""


def lesson_path(path: str | None) -> str | None:
    """The material a participant's notebook is a copy of: `intro (updated 2).ipynb` is
    `intro.ipynb` handed out again next to their own."""
    if not path:
        return None
    p = PurePosixPath(path)
    return str(p.with_name(_UPDATED.sub("", p.stem) + p.suffix))


@dataclass(frozen=True)
class Place:
    lesson: Lesson
    step: Step | None  # None: a cell of the participant's own, somewhere in the lesson
    exercise: int | None  # the step's exercise, or the one the cell sits in (copy)


# A participant's saved copy as far as placing needs it: (id, cell type, source hash,
# heading) per cell, in order. Small to keep, whatever the notebook's outputs weigh.
CopyCells = list[tuple[str | None, str, str, str | None]]


def slim(notebook: dict[str, Any]) -> CopyCells:
    return [(c.get("id") if isinstance(c.get("id"), str) else None,
             str(c.get("cell_type")), source_hash(cell_source(c)), heading(c))
            for c in notebook.get("cells", []) if isinstance(c, dict)]


def place_in_copy(lesson: Lesson, copy: CopyCells, cell: str | None,
                  hash_: str | None) -> int | None:
    """The exercise a cell of the participant's own sits in, from their saved copy: the
    nearest lesson cell or lesson heading above it (None: the cell is not in the copy)."""
    where = next((i for i, (id_, kind, h, _) in enumerate(copy)
                  if (cell and id_ == cell) or (hash_ and kind == "code" and h == hash_)),
                 None)
    if where is None:
        return None
    for id_, kind, h, title in reversed(copy[:where]):
        if title in lesson.headings:
            return lesson.headings[title]
        if kind == "code":
            step = lesson.locate(id_, h)
            if step is not None:
                return step.exercise
    return 0


class Lessons:
    """The lessons in the materials folder, re-read when a notebook there changes."""

    def __init__(self, materials: Path) -> None:
        self.materials = Path(materials)
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, int]] = {}
        self._lessons: dict[str, Lesson] = {}
        self._checked = 0.0
        self.version = 0  # changes whenever a lesson did

    def all(self) -> dict[str, Lesson]:
        with self._lock:
            if time.monotonic() - self._checked >= RESCAN_SECONDS:
                self._checked = time.monotonic()
                self._rescan()
            return self._lessons

    def _rescan(self) -> None:
        found: dict[str, tuple[int, int]] = {}
        if self.materials.is_dir():
            for root, dirs, files in os.walk(self.materials):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and d not in ("__pycache__", ".ipynb_checkpoints"))
                for name in sorted(files):
                    if name.endswith(".ipynb") and not name.startswith("."):
                        file = Path(root) / name
                        info = file.stat()
                        rel = file.relative_to(self.materials).as_posix()
                        found[rel] = (info.st_mtime_ns, info.st_size)
                        if len(found) >= MAX_LESSONS:
                            break
        if found == self._seen:
            return
        lessons = {}
        for rel, (_, size) in found.items():
            if size > MAX_LESSON_BYTES:
                continue
            try:
                notebook = json.loads((self.materials / rel).read_bytes())
            except (OSError, ValueError):
                continue  # half-written upload, not JSON: skipped until it changes
            lesson = parse_lesson(rel, notebook) if isinstance(notebook, dict) else None
            if lesson is not None:
                lessons[rel] = lesson
        self._seen, self._lessons = found, lessons
        self.version += 1

    def find(self, path: str | None, cell: str | None, hash_: str | None,
             near: int = 0) -> Place | None:
        """Where an execution belongs: its notebook's lesson, else any lesson holding
        that very cell (a copy under another name)."""
        lessons = self.all()
        own = lessons.get(lesson_path(path) or "")
        if own is not None:
            step = own.locate(cell, hash_, near)
            return Place(own, step, step.exercise if step else None)
        for lesson in lessons.values():
            step = lesson.locate(cell, None)
            if step is not None:
                return Place(lesson, step, step.exercise)
        return None
