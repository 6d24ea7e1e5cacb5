"""Participants' servers as the hub sees them: who runs, and starting/stopping them.

Asked through the hub's REST API with the dashboard service's own token. Its role (in
jupyterhub_config.py) allows listing users and reading, starting and stopping the
servers of the `participants` group, nothing more: the dashboard can restart a stuck
participant, never an instructor, and never touch anybody's files through the hub.
"""

from __future__ import annotations

import threading
import time

import requests

from workshop.hubapi import HubAPI, HubAPIError

# The hub answers a start or stop within its slow_spawn/slow_stop_timeout (10 s) with 202
# when it takes longer: wait for that answer with room to spare, never exactly as long.
CHANGE_ANSWER_TIMEOUT = 30.0


class ServerError(RuntimeError):
    pass


class Servers:
    def __init__(self, hub: HubAPI | None, max_age: float = 3.0) -> None:
        self.hub = hub
        self.max_age = max_age
        self._lock = threading.Lock()
        self._states: dict[str, str] | None = None
        self._at = 0.0

    def states(self) -> dict[str, str] | None:
        """user -> "running" / "pending" for everyone with a server; None when unknown."""
        if self.hub is None:
            return None
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                try:
                    self._states = {}
                    for user in self.hub.paginate("/users?state=active"):
                        server = (user.get("servers") or {}).get("")
                        if server:
                            ready = server.get("ready") and not server.get("pending")
                            self._states[user["name"]] = "running" if ready else "pending"
                except (HubAPIError, OSError):
                    self._states = None  # unknown is said as such, never as "stopped"
                self._at = time.monotonic()
            return None if self._states is None else dict(self._states)

    def count(self) -> int | None:
        states = self.states()
        return None if states is None else len(states)

    def _forget(self) -> None:
        with self._lock:
            self._at = 0.0

    def _server(self, user: str) -> dict | None:
        assert self.hub is not None
        model = self.hub.request("GET", f"/users/{user}")
        return (model.get("servers") or {}).get("")

    def _wait(self, user: str, running: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self._server(user)
            if running and server and server.get("ready"):
                return
            if not running and not server:
                return
            time.sleep(0.5)
        raise ServerError(f"{user}'s server did not {'start' if running else 'stop'} "
                          f"within {timeout:.0f}s")

    def _change(self, method: str, user: str, running: bool, timeout: float) -> None:
        if self.hub is None:
            raise ServerError("no hub connection")
        try:
            # POST: 201 started, 202 starting; DELETE: 204/202. 400: already so / pending.
            self.hub.request(method, f"/users/{user}/server", ok=(400,),
                             timeout=CHANGE_ANSWER_TIMEOUT)
            self._wait(user, running=running, timeout=timeout)
        except HubAPIError as e:
            raise ServerError(str(e)) from e
        except requests.RequestException as e:  # the hub did not answer: say so, no 500
            raise ServerError(f"the hub did not answer: {e}") from e
        finally:
            self._forget()

    def start(self, user: str, timeout: float = 120) -> None:
        self._change("POST", user, running=True, timeout=timeout)

    def stop(self, user: str, timeout: float = 90) -> None:
        self._change("DELETE", user, running=False, timeout=timeout)

    def restart(self, user: str) -> float:
        """Stop, then start the server again; the seconds it took. Homes are untouched."""
        started = time.monotonic()
        self.stop(user)
        self.start(user)
        return time.monotonic() - started
