"""Whose token is this? Asked of the hub's REST API, safely from many threads at once.

JupyterHub's `HubAuth.user_for_token` runs its async client on one background event loop
that it creates lazily: two waitress threads asking at the same moment each created a
loop, one replaced the other, and both ran on the same loop ("RuntimeError: This event
loop is already running", a 500 on GET /events). Its cache is a plain dict purged
while other threads read it. This asks the hub synchronously instead (the same
`GET /hub/api/user` with the token), with a connection per thread, and keeps answers
for a few seconds in a cache under a lock, keyed by a hash of the token so the tokens
themselves are not kept. Threads asking about the same token at the same time wait for
one answer.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import requests

UserModel = dict[str, Any]

# A user removed from users.txt, or an instructor mark taken away, applies within this
# many seconds; a page polling every second asks the hub once per this period.
TOKEN_CACHE_SECONDS = 5.0
# The hub answers on the same host in milliseconds; a hub this slow is down as far as a
# request is concerned, and a waitress thread must not wait on it longer.
HUB_TIMEOUT = 5.0
# Answers kept at most (valid and invalid tokens alike): the oldest go first. Made-up
# tokens posted in a loop can only push out answers that are asked for again.
MAX_CACHED_TOKENS = 4096


class HubUnavailable(RuntimeError):
    """The hub could not say whose token it is (down, slow, or answering errors)."""


class HubTokenCheck:
    """`check(token)` -> the hub's user model (with the token's scopes), or None."""

    def __init__(self, api_url: str, *, ttl: float = TOKEN_CACHE_SECONDS,
                 timeout: float = HUB_TIMEOUT, max_cached: int = MAX_CACHED_TOKENS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = api_url.rstrip("/") + "/user"
        self.ttl = ttl
        self.timeout = timeout
        self.max_cached = max_cached
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, UserModel | None]] = OrderedDict()
        # Tokens being asked about right now: a burst with one token asks the hub once.
        self._asking: dict[str, threading.Event] = {}
        self._local = threading.local()  # a requests.Session is not shared by threads

    def __call__(self, token: str) -> UserModel | None:
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        with self._lock:
            hit = self._fresh(key)
            if hit is not None:
                return hit[1]
            asking = self._asking.get(key)
            if asking is None:  # this thread asks the hub; others with this token wait
                asking = self._asking[key] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            asking.wait(self.timeout)
            with self._lock:
                hit = self._fresh(key)
            if hit is not None:
                return hit[1]
            return self._ask(token)  # the first asker failed: try ourselves, uncached
        try:
            user = self._ask(token)  # outside the lock: other tokens are not held up
            with self._lock:
                self._cache[key] = (self._clock() + self.ttl, user)
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_cached:
                    self._cache.popitem(last=False)
            return user
        finally:
            with self._lock:
                del self._asking[key]
            asking.set()

    def _fresh(self, key: str) -> tuple[float, UserModel | None] | None:
        hit = self._cache.get(key)
        return hit if hit is not None and hit[0] > self._clock() else None

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _ask(self, token: str) -> UserModel | None:
        try:
            r = self._session().get(self.url, headers={"Authorization": f"token {token}"},
                                    timeout=self.timeout)
        except requests.RequestException as e:
            raise HubUnavailable(f"cannot reach the hub: {type(e).__name__}") from e
        if r.status_code in (401, 403, 404):
            return None  # not a token the hub knows (or expired): nobody
        if r.status_code != 200:
            raise HubUnavailable(f"the hub answered {r.status_code}")
        try:
            user = r.json()
        except ValueError as e:
            raise HubUnavailable("the hub's answer is not JSON") from e
        if not isinstance(user, dict) or not isinstance(user.get("name"), str):
            raise HubUnavailable("the hub's answer has no user name")
        return user
