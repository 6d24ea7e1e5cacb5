"""Progress lines with the elapsed time, e.g. `[  12.3s] droplet lab created`.

Provisioning takes minutes; the elapsed time tells the instructor at a glance
which step is slow, and the same prefix on the node's streamed output lines
makes a failure easy to place.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from provision.errors import REDACT


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._start = time.monotonic()
        self._stream = stream

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def prefix(self) -> str:
        return f"[{self.elapsed:6.1f}s]"

    def say(self, message: str) -> None:
        out = self._stream or sys.stdout
        print(REDACT(f"{self.prefix()} {message}"), file=out, flush=True)

    def node(self, line: str) -> None:
        """A line of output from the node, marked so it is not mistaken for ours."""
        self.say(f"  node| {line}")
