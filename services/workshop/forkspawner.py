"""The fork spawner: each participant's JupyterLab forked from a preloaded process.

`WorkshopSpawner` execs `jupyterhub-singleuser` per participant: every server imports
the same ~1.3 s of Python and keeps a private copy of it. `ForkSpawner` asks the server
fork server (forkserver.py) instead: the child is the participant (uid, gid, groups, own
session, clean environment, no inherited descriptor) before it runs anything of theirs,
and shares the preloaded pages with every other server. Its kernels come from the kernel
fork server the same way (forkkernel.py). Everything else is WorkshopSpawner's: account,
home and materials first, starts in turn, and a stop that ends every process of theirs.

The hub's token for the server travels in the request to the child, never through the
fork server itself (forkserver.py says why). When the fork server is not ready in time
(`fork_wait`), the server is started the classic way instead, and the log says so.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Float

from .accounts import SystemUser, participant_uid
from .forkclient import ForkedProcess, ForkRefused, fork_child
from .forkkernel import NAME as PROVISIONER
from .forkkernel import SOCKET_ENV
from .forksupervisor import RUN_DIR, ForkServers
from .spawner import WorkshopSpawner

_SERVERS: ForkServers | None = None


def fork_servers() -> ForkServers:
    """This hub's fork servers (one pair per hub), started on first use."""
    global _SERVERS
    if _SERVERS is None:
        _SERVERS = ForkServers.default()
        _SERVERS.start()
    return _SERVERS


def runtime_dir(account: SystemUser, root: Path = RUN_DIR / "runtime") -> str:
    """A participant's Jupyter runtime directory (connection files, kernels' sockets):
    0700 theirs, in a directory only root can write to, so nobody can plant or squat it,
    and short: a Unix socket's path has room for 107 bytes, which a 32-character
    username's ~/.local/share/jupyter/runtime/kernel-<uuid>-ipc-1 can exceed."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)  # anyone may pass through to their own; nobody may list or write
    path = root / str(account.uid)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(mode=0o700, exist_ok=True)
    os.chown(path, account.uid, account.gid, follow_symlinks=False)
    path.chmod(0o700)
    return str(path)


class ForkSpawner(WorkshopSpawner):
    fork_wait = Float(
        60, help="""Seconds a start waits for the fork server to be ready (it imports for
        a few seconds after the hub starts, and after a crash) before starting the server
        the classic way instead.""",
    ).tag(config=True)

    _child: ForkedProcess | None = None
    _account: SystemUser | None = None

    async def start(self):  # type: ignore[override]
        self._account = await self.prepare_home()
        return await self.start_in_turn(self._start_forked)

    async def _start_forked(self) -> tuple[str, int]:
        servers = fork_servers()
        servers.watch()
        if not await servers.server.wait_ready(self.fork_wait):
            self.log.warning("fork server not ready after %ss: starting %s's server the "
                             "classic way", self.fork_wait, self.user.name)
            return await LocalProcessSpawner.start(self)
        env = self.get_env()
        env[SOCKET_ENV] = str(servers.kernel.socket_path)
        env["JUPYTER_DEFAULT_PROVISIONER_NAME"] = PROVISIONER
        env["JUPYTER_RUNTIME_DIR"] = await asyncio.to_thread(runtime_dir, self._account)
        # Kernels on Unix sockets in that private directory, not on TCP ports of the
        # loopback: a whole class starting kernels at once raced for the same free ports
        # ("Address already in use", kernels restarted, first cells lost), and no other
        # participant can even connect to them.
        argv = [*self.get_args(), "--KernelManager.transport=ipc"]
        request = {"user": self.user.name, "env": env, "argv": argv,
                   "cwd": env.get("HOME", "/")}
        try:
            self._child = await asyncio.to_thread(fork_child,
                                                  str(servers.server.socket_path), request)
        except ForkRefused as e:
            self.log.warning("no forked server for %s (%s): starting it the classic way",
                             self.user.name, e)
            return await LocalProcessSpawner.start(self)
        self.pid = self._child.pid
        self.log.info("forked %s's server: pid %d", self.user.name, self.pid)
        return (self.ip or "127.0.0.1", self.port)

    async def poll(self):  # type: ignore[override]
        if self._child is None:
            if self.proc is None and self.pid and not self._pid_is_ours():
                self.clear_state()  # state from before a restart; the pid is another's now
                return 0
            return await super().poll()  # a classic start, or state from before a restart
        status = self._child.poll()
        if status is not None:
            self._child = None
            self.clear_state()
        return status

    def _pid_is_ours(self) -> bool:
        """Whether self.pid still runs as this participant (pids are reused)."""
        uid = participant_uid(self.user.name, self.home_root)
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return False
        uids = next((line.split()[1:] for line in status.splitlines()
                     if line.startswith("Uid:")), [])
        return uid is not None and uids[:1] == [str(uid)]

    async def _signal(self, sig: int) -> bool:  # type: ignore[override]
        if self._child is None:
            return await super()._signal(sig)
        self._child.send_signal(sig)  # through its pidfd: never a recycled pid
        return self._child.returncode is None
