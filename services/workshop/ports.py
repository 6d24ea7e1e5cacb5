"""Loopback ports for participants' servers: never the same port to two servers at once.

Servers listen on 127.0.0.1 of a network the whole class shares (the hub's container, or
the host's network for per-participant containers). JupyterHub's `random_port()` asks
the kernel for a free port and closes it again; two starts asking within moments can be
told the same port (seen: two of twenty containers started at once got 44579; the second
server could not bind it, the hub's readiness check reached the first one's, and the
participant's server was "ready" and gone a second later). So every port handed out is
remembered per server until that server's next start or its stop.
"""

from __future__ import annotations

from jupyterhub.utils import random_port

_GIVEN: dict[str, int] = {}  # "user/server name" -> its port; one hub, one event loop


def take(owner: str, tries: int = 100) -> int:
    """A free loopback port that no other starting or running server was given."""
    _GIVEN.pop(owner, None)
    others = set(_GIVEN.values())
    for _ in range(tries):
        port = random_port()
        if port not in others:
            _GIVEN[owner] = port
            return port
    raise RuntimeError(f"no free loopback port for {owner} after {tries} tries")


def release(owner: str) -> None:
    _GIVEN.pop(owner, None)
