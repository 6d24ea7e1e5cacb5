"""Servers start in turn: a fair first-come queue shared by every spawner of the hub.

A whole class logs in at 9:00. Starting sixty servers at once on two cores gives each a
sixtieth of the CPU: all are late, and the hub's own event loop starves with them. So at
most `limit` servers start at the same moment; the others wait in line, in the order
they asked, and can be told their place (the spawn page shows it).

Waiting in line is not starting: JupyterHub times `Spawner.start` (start_timeout), so the
spawners wait for their turn before that (in the pre-spawn hook) and hold the turn until
their server answers (see spawner.WorkshopHomes).
"""

from __future__ import annotations

import asyncio
from collections import deque


class StartQueue:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one server must be able to start")
        self.limit = limit
        self._starting: set[str] = set()
        self._waiting: deque[tuple[str, asyncio.Future[None]]] = deque()

    def position(self, key: str) -> int:
        """0 when `key` is starting (or unknown), else how many are before it, plus one."""
        for index, (waiting, _) in enumerate(self._waiting):
            if waiting == key:
                return index + 1
        return 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def starting(self) -> int:
        return len(self._starting)

    def holds(self, key: str) -> bool:
        return key in self._starting

    async def turn(self, key: str) -> None:
        """Return once `key` may start; its turn lasts until `release(key)`."""
        if key in self._starting:
            return
        if len(self._starting) < self.limit and not self._waiting:
            self._starting.add(key)
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, ready))
        try:
            await ready
        except BaseException:
            # Cancelled while in line (the participant went away): leave the line, and
            # pass on a turn that was handed over in the same moment.
            self._waiting = deque(w for w in self._waiting if w[0] != key)
            if key in self._starting:
                self.release(key)
            raise

    def release(self, key: str) -> None:
        """End `key`'s turn (or take it out of the line); the next in line starts."""
        self._waiting = deque(w for w in self._waiting if w[0] != key)
        self._starting.discard(key)
        while self._waiting and len(self._starting) < self.limit:
            nxt, ready = self._waiting.popleft()
            if ready.done():  # cancelled meanwhile
                continue
            self._starting.add(nxt)
            ready.set_result(None)
