"""Password checks off the hub's event loop, in a small bounded pool, in equal time.

A bcrypt check costs about a quarter of a second of CPU by design. Run on the hub's event
loop, four login attempts a second froze the hub for everyone (every page, every proxied
request waits for the loop), and the time an attempt took told whether its username
exists: a listed name cost a bcrypt check, an unknown one nothing.

So here:
- checks run in `threads` worker threads (the `bcrypt` package releases the GIL while it
  hashes, so the loop keeps running: benchmarks/login_flood.py measures both), each at a
  lower CPU priority (nice 10 for that thread only) than the loop's thread;
- at most `max_waiting` checks wait for a thread; beyond that an attempt is refused at
  once with a log line instead of queueing up seconds of work (a flood must not turn into
  minutes of delay for the real participants behind it);
- every attempt costs one bcrypt check of the usual cost, whoever it names: an unknown
  username, or an account with a plain-text password, is checked against a dummy hash, so
  the answer's timing tells nothing about which usernames exist. (A users.txt with plain
  passwords only has no bcrypt cost to match: there every attempt costs nothing alike.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from .roster import Account

log = logging.getLogger(__name__)

COST_RE = re.compile(r"^\$2[aby]\$(\d\d)\$")
WORKER_NICE = 10
BCRYPT_MAX = 72  # bytes of password bcrypt looks at; longer ones it refuses


class Busy(RuntimeError):
    """Too many password checks are waiting already; the attempt is refused."""


@functools.cache
def dummy_hash(cost: int) -> bytes:
    """A hash nobody's password matches, to spend the same time on every attempt."""
    return bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(rounds=cost))


def usual_cost(accounts: Iterable[Account]) -> int | None:
    """The bcrypt cost most hashed accounts use (the one a dummy check must match); None
    when no account is hashed (then no attempt costs a bcrypt check)."""
    costs = Counter(int(m.group(1)) for a in accounts if (m := COST_RE.match(a.secret)))
    return costs.most_common(1)[0][0] if costs else None


def _lower_priority() -> None:
    # Linux applies nice per thread: only the hashing threads yield to the event loop.
    # Not permitted (a container without CAP_SYS_NICE may still lower it; raise, never):
    # the pool works the same, only without the nicety.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


def check_in_equal_time(account: Account | None, password: str, cost: int | None) -> bool:
    """The password check itself (blocking): one bcrypt check of `cost` whatever `account`
    is (none when `cost` is None: a users.txt without hashes)."""
    given = password.encode("utf-8")
    if account is not None and account.hashed and len(given) <= BCRYPT_MAX:
        return account.check_password(password)
    if cost is not None:
        # Unknown name, plain-text password or a password bcrypt refuses outright (too
        # long): spend the time a hashed account's check takes, then decide.
        bcrypt.checkpw(given[:BCRYPT_MAX], dummy_hash(cost))
    return account is not None and not account.hashed and account.check_password(password)


class PasswordChecker:
    """Runs `check_in_equal_time` in a bounded pool; one per hub."""

    def __init__(self, threads: int = 2, max_waiting: int = 16) -> None:
        self.threads = max(1, threads)
        self.max_waiting = max(0, max_waiting)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="password-check",
                                        initializer=_lower_priority)
        self._pending = 0  # running + waiting; only touched on the event loop's thread

    @property
    def pending(self) -> int:
        return self._pending

    async def check(self, account: Account | None, password: str, cost: int | None) -> bool:
        """Whether `password` is `account`'s; raises Busy when the queue is full."""
        if self._pending >= self.threads + self.max_waiting:
            raise Busy(f"{self._pending} password checks running or waiting")
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, check_in_equal_time, account,
                                              password, cost)
        finally:
            self._pending -= 1
