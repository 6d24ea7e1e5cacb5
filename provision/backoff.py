"""Polling with exponential backoff and a deadline, instead of fixed sleeps.

Used for the create action, SSH coming up, API retries and the final health
check: each waits as little as possible early on and backs off when the
thing it waits for is clearly slow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first: float = 0.5
    factor: float = 1.6
    maximum: float = 10.0
    timeout: float = 300.0

    def delays(self) -> Iterator[float]:
        """Yield how long to sleep before each retry until the deadline has passed.

        The caller tries once, then for each yielded delay sleeps and tries
        again; when the generator ends the deadline is reached.
        """
        deadline = time.monotonic() + self.timeout
        delay = self.first
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            yield min(delay, remaining)
            delay = min(delay * self.factor, self.maximum)


def sleep(seconds: float) -> None:
    # One place to sleep, so tests can see that waits come from a backoff.
    if seconds > 0:
        time.sleep(seconds)
