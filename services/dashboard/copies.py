"""Participants' saved copies of lesson notebooks, for placing a cell of their own.

An execution whose cell is in no lesson (a cell the participant added, or one whose id and
source both changed) is placed by what comes before it in their saved copy
(lesson.place_in_copy). Copies are read from the homes on disk only (a read through a
participant's server could be made slow by that participant, on a request thread), at
most once per notebook and `TTL` seconds, and kept slim (ids, hashes, headings).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .lesson import CopyCells, Lesson, place_in_copy, slim
from .sources import FileSystemSource

TTL = 30.0  # seconds a copy is used before it is read again
MAX_COPIES = 500  # kept at most (a class's lesson notebooks); the oldest go first
MAX_BYTES = 8 * 1024 * 1024  # a bigger notebook is not parsed for this


class SavedCopies:
    def __init__(self, read: Callable[[str, str], bytes | str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read = read
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], tuple[float, CopyCells | None]] = (
            OrderedDict())

    @classmethod
    def for_source(cls, source: Any) -> Callable[..., int | None] | None:
        """The placing function for the dashboard's notebook source, if it reads homes."""
        if not isinstance(source, FileSystemSource):
            return None
        return cls(lambda user, path: source.read(user, path).content).place

    def copy(self, user: str, path: str) -> CopyCells | None:
        key = (user, path)
        with self._lock:
            hit = self._cache.get(key)
            if hit and self.clock() - hit[0] < TTL:
                return hit[1]
            # Taken now: other threads asking meanwhile use the old copy or none.
            self._cache[key] = (self.clock(), hit[1] if hit else None)
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_COPIES:
                self._cache.popitem(last=False)
        cells: CopyCells | None = None
        try:
            content = self.read(user, path)
            if len(content) <= MAX_BYTES:
                notebook = json.loads(content)
                cells = slim(notebook) if isinstance(notebook, dict) else None
        except Exception:  # missing, unreadable, not JSON: the cell stays unplaced
            cells = None
        with self._lock:
            self._cache[key] = (self.clock(), cells)
        return cells

    def place(self, user: str, path: str, lesson: Lesson, cell: str | None,
              hash_: str | None) -> int | None:
        cells = self.copy(user, path)
        return place_in_copy(lesson, cells, cell, hash_) if cells else None
