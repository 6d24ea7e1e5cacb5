"""Tokens the dashboard holds for each participant, each good for that participant's own
server only, for an hour, renewed before it runs out.

    tokens = ParticipantTokens(hub)
    token = tokens.get("alice")            # asked of the hub on first use, then cached
    token = tokens.renew("alice", token)   # her server refused it (403): a new one, once

The dashboard's own token opens every participant's server. Sent to one of them it would
be in the hands of anyone whose server logs request headers, and valid for everyone
else's. So the dashboard sends each server a token of that server's owner, created
through the hub (``POST /users/{name}/tokens``, the dashboard's role holds
``tokens!group=participants``) with the one scope ``access:servers!user={name}``: whoever
reads it from a header can do nothing the participant cannot do already. The dashboard's
own token only ever goes to the hub's API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from workshop.hubapi import HubAPI, HubAPIError

from .paths import safe_user
from .sources import SourceError, SourceUnavailable

log = logging.getLogger("dashboard.tokens")

# An hour: a token read from a header is worthless soon, and renewing costs one hub
# request per participant per hour.
TOKEN_SECONDS = 3600
# Renewed ten minutes early, so no read starts with a token about to lapse (and a clock
# that differs a little from the hub's does not matter).
RENEW_BEFORE = 600
NOTE = "dashboard: read notebooks"


@dataclass(frozen=True)
class _Token:
    value: str
    id: str | None  # the hub's id, to revoke it once replaced
    renew_at: float  # on the `clock`


class ParticipantTokens:
    """One token per participant, created when first needed and renewed in time."""

    def __init__(self, hub: HubAPI, *, seconds: int = TOKEN_SECONDS,
                 renew_before: int = RENEW_BEFORE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= renew_before < seconds:
            raise ValueError("renew_before must be shorter than a token's life")
        self.hub, self.seconds, self.renew_before, self.clock = hub, seconds, renew_before, clock
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.created = 0

    def get(self, user: str) -> str:
        """A token of `user` valid for at least `renew_before` seconds more."""
        with self._user_lock(user):
            token = self._tokens.get(user)
            if token is None or self.clock() >= token.renew_at:
                token = self._create(user, token)
            return token.value

    def renew(self, user: str, refused: str) -> str:
        """A new token after `refused` was refused, unless another thread renewed already."""
        with self._user_lock(user):
            token = self._tokens.get(user)
            if token is not None and token.value != refused:
                return token.value
            return self._create(user, token).value

    def _user_lock(self, user: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(safe_user(user), threading.Lock())

    def _create(self, user: str, old: _Token | None) -> _Token:
        asked = self.clock()
        body = {"scopes": [f"access:servers!user={user}"], "expires_in": self.seconds,
                "note": NOTE}
        try:
            model = self.hub.request("POST", f"/users/{quote(user)}/tokens", json=body)
        except HubAPIError as e:
            raise SourceError(f"the hub gave the dashboard no token for {user}'s server "
                              f"({e.status})") from None
        except OSError as e:  # requests' errors are OSErrors
            raise SourceUnavailable(f"the hub does not answer ({type(e).__name__})") from None
        value = model.get("token") if isinstance(model, dict) else None
        if not isinstance(value, str) or not value:
            raise SourceError(f"the hub's answer has no token for {user}'s server")
        token_id = model.get("id")
        token = _Token(value, token_id if isinstance(token_id, str) else None,
                       asked + self.seconds - self.renew_before)
        self._tokens[user] = token
        self.created += 1
        if old is not None and old.id:
            self._revoke(user, old.id)
        return token

    def _revoke(self, user: str, token_id: str) -> None:
        """The replaced token stops working now rather than within the hour."""
        try:
            self.hub.request("DELETE", f"/users/{quote(user)}/tokens/{quote(token_id)}",
                             ok=(404,))
        except (HubAPIError, OSError) as e:
            log.info("could not revoke %s's replaced token: %s", user, e)
