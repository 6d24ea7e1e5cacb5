"""The spawners' common part, and the default spawner (one process per participant).

Both spawners (`WorkshopSpawner` here, `containers.WorkshopDockerSpawner` for one
container per participant) prepare a participant the same way before their server starts:
`WorkshopHomes` makes sure the account, the 0700 home and the materials are in place and
says who may reach the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import maybe_future, wait_for_http_server
from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable

from . import ports
from .accounts import SystemUser, ensure_system_user, participant_uid
from .listeners import listener_uids
from .materials import Ledger, hand_out
from .processes import kill_user_processes
from .roster import RosterFile, RosterUnavailable
from .startqueue import StartQueue

PARTICIPANTS = "participants"  # the group users-sync keeps in step with users.txt


# Servers starting now in this hub, shared by all spawners (one event loop per hub).
_QUEUE: StartQueue | None = None


def start_queue(limit: int) -> StartQueue:
    global _QUEUE
    if _QUEUE is None:
        _QUEUE = StartQueue(limit)
    return _QUEUE


class WorkshopHomes(LoggingConfigurable):
    """Mixin for a Spawner: account, home and materials before every start, and starts
    taken in turn (at most `concurrent_starts` at once, the others in line: startqueue).

    A Configurable of its own, so `c.WorkshopHomes.materials_dir = ...` configures both
    spawners. The users-sync service usually made the account already; doing it here too
    closes the gap between a users.txt edit and the next sync.
    """

    home_root = Unicode("/home", help="Where participants' homes are.").tag(config=True)
    materials_dir = Unicode(
        "/srv/hub/materials", help="Files handed out into every home (never overwriting)."
    ).tag(config=True)
    ledger_dir = Unicode(
        "/srv/hub/state/handouts", help="Private record of what each participant was given."
    ).tag(config=True)

    concurrent_starts = Integer(
        4,
        help="""How many servers may be starting at the same moment; the others wait their
        turn in line, first come first served, and their spawn page says their place. A
        whole class logging in at 9:00 on two cores otherwise starts sixty servers that
        each get a sixtieth of the CPU: all are late, and the hub's own event loop starves
        with them. A turn lasts until the server answers. Waiting in line does not count
        against start_timeout: only the server's own start does.
        """,
    ).tag(config=True)

    @property
    def _queue_key(self) -> str:
        return f"{self.user.name}/{self.name}"  # type: ignore[attr-defined]

    async def run_pre_spawn_hook(self) -> None:  # type: ignore[override]
        # JupyterHub awaits this before it starts timing `start`: wait for the turn here.
        await start_queue(self.concurrent_starts).turn(self._queue_key)
        await maybe_future(super().run_pre_spawn_hook())  # type: ignore[misc]

    async def progress(self):  # type: ignore[override]
        """The spawn page's progress: the place in line, then the start itself."""
        queue = start_queue(self.concurrent_starts)
        last = None
        while self._spawn_pending and (place := queue.position(self._queue_key)):  # type: ignore[attr-defined]
            if place != last:
                ahead = "1 participant" if place == 1 else f"{place} participants"
                yield {"progress": 5, "message": f"Waiting for a turn to start: {ahead} "
                       "ahead of you (a class logging in at once starts in turns)"}
                last = place
            await asyncio.sleep(1)
        yield {"progress": 30, "message": "Starting your server"}
        async for event in super().progress():  # type: ignore[misc]
            yield event

    async def start_in_turn(self, start: Callable[[], Awaitable[tuple[str, int]]]
                            ) -> tuple[str, int]:
        """Run the spawner's real `start` in this server's turn, until it answers."""
        queue = start_queue(self.concurrent_starts)
        await queue.turn(self._queue_key)  # at once, unless started without the hub
        self.port = ports.take(self._queue_key)  # type: ignore[attr-defined]
        try:
            ip, port = await start()
            server = self.server  # type: ignore[attr-defined]
            if server is not None:  # always, when the hub spawns
                await self._until_answering(f"http://{ip}:{port}{server.base_url}api")
                await self._check_listener(port)
            return ip, port
        finally:
            queue.release(self._queue_key)

    async def stop(self, now: bool = False) -> None:  # type: ignore[override]
        # A start that failed before `start` ran (or was cancelled) must not keep a turn.
        start_queue(self.concurrent_starts).release(self._queue_key)
        await super().stop(now=now)  # type: ignore[misc]
        ports.release(self._queue_key)

    async def _check_listener(self, port: int) -> None:
        """Refuse to route to a port that a process of another uid holds (listeners.py)."""
        name = self.user.name  # type: ignore[attr-defined]
        uid = await asyncio.to_thread(participant_uid, name, self.home_root)
        owners = await asyncio.to_thread(listener_uids, port)
        if uid is not None and owners and owners != {uid}:
            self.log.error("port %d for %s's server is held by uid %s: not routing to it",  # type: ignore[attr-defined]
                           port, name, sorted(owners))
            raise RuntimeError(f"the port chosen for {name}'s server was taken by another "
                               "account's process; press Start again")

    async def _until_answering(self, url: str) -> None:
        """Wait until the new server answers or dies; the hub's own checks judge it."""
        deadline = time.monotonic() + self.http_timeout  # type: ignore[attr-defined]
        while time.monotonic() < deadline and await self.poll() is None:  # type: ignore[attr-defined]
            try:
                await wait_for_http_server(url, timeout=1)
                return
            except TimeoutError:
                continue

    async def prepare_home(self) -> SystemUser:
        """Account, home (0700) and materials of the spawner's user; the account."""
        name = self.user.name  # type: ignore[attr-defined]  # provided by Spawner
        account = await asyncio.to_thread(ensure_system_user, name, self.home_root)
        report = await asyncio.to_thread(
            hand_out, account, self.materials_dir, Ledger(self.ledger_dir)
        )
        if report.copied or report.renamed:
            self.log.info("materials for %s: copied %s, renamed %s", name, report.copied,
                          report.renamed)
        self.oauth_access_scopes = self.workshop_access_scopes()
        return account

    def workshop_access_scopes(self) -> list[str]:
        """The scopes that open this server: JupyterHub's own, plus the participants group.

        A server checks a request's token against these itself, without the hub's database,
        so a group filter (`access:servers!group=participants`, held by the dashboard to
        read saved notebooks) never matches a server's `!server=`/`!user=` scopes there.
        Naming the group here lets exactly the holders of that group scope in, and only
        for a participant: an instructor's server never lists it.
        """
        user, server = self.user.name, self.name  # type: ignore[attr-defined]
        scopes = [f"access:servers!server={user}/{server}", f"access:servers!user={user}"]
        if self._is_participant():
            scopes.append(f"access:servers!group={PARTICIPANTS}")
        return scopes

    def _is_participant(self) -> bool:
        """In the hub's participants group, or listed as a participant in users.txt.

        users.txt is asked too because the group lags behind it: right after the hub
        starts, or after an edit, someone can log in and spawn before users-sync adds them.
        """
        if PARTICIPANTS in {g.name for g in self.user.groups}:  # type: ignore[attr-defined]
            return True
        users_file = getattr(self.authenticator, "users_file", None)  # type: ignore[attr-defined]
        if not users_file:
            return False
        try:
            participants = RosterFile(users_file).load().participants
        except RosterUnavailable:
            return False
        return self.user.name in participants  # type: ignore[attr-defined]


class WorkshopSpawner(WorkshopHomes, LocalProcessSpawner):
    """Each participant's JupyterLab runs in the hub's container as their own uid."""

    async def start(self):  # type: ignore[override]
        await self.prepare_home()
        return await self.start_in_turn(super().start)

    async def stop(self, now: bool = False) -> None:  # type: ignore[override]
        """Stop the server, then every other process of the participant too (a `nohup`
        job, a `setsid` daemon): a stopped server frees its memory, a restarted one
        starts clean. Their files stay."""
        await super().stop(now=now)
        uid = await asyncio.to_thread(participant_uid, self.user.name, self.home_root)  # type: ignore[attr-defined]
        if uid is not None:
            killed = await asyncio.to_thread(kill_user_processes, uid)
            if killed:
                self.log.info("stopped %d more processes of %s", killed, self.user.name)  # type: ignore[attr-defined]
