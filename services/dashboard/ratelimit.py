"""Token buckets per key (a participant): a burst at once, then a steady rate.

Thread-safe; the waitress threads share one instance. Keys are hub-checked user names,
so their number is bounded by the class; still, buckets that have refilled completely
are forgotten when many are kept, since they hold nothing a new bucket would not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_BUCKETS = 10_000  # far above any class; only then are full buckets forgotten


class TokenBuckets:
    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str) -> float:
        """Use one token of `key`'s bucket: 0.0 if there was one, else the seconds
        until there will be (nothing is used then)."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            if key not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        full = [k for k, (tokens, when) in self._buckets.items()
                if tokens + (now - when) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
