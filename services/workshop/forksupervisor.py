"""The hub keeps its two fork servers running: one for servers, one for kernels.

Each is a child process of the hub, started with a clean environment (nothing of the
hub's: no token, no secret reaches it), in a session of its own. When one dies, the hub
notices at once (its pidfd turns readable), logs it and starts a new one, waiting a
little longer after each quick death; running servers and kernels are not its children
in any way that matters (own sessions; PID 1 reaps them), so they carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("workshop.forksupervisor")

RUN_DIR = Path("/run/workshop-fork")
SERVICES = str(Path(__file__).resolve().parents[1])
# The fork servers' whole environment (plus PATH). It is visible to every child in
# /proc/<pid>/environ (the block a process starts with stays in its memory), so it must
# never hold anything secret. HOME leads nowhere: nothing imported may settle on a home
# before a child has its participant's.
BASE_ENV = {
    "LANG": "C.UTF-8",
    "HOME": "/nonexistent",
    "PYTHONUNBUFFERED": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # what ipykernel sets
}


@dataclass
class ForkServerProcess:
    role: str
    socket_path: Path
    preload: list[str] = field(default_factory=list)  # files of module names
    nice: int = 0
    env: dict[str, str] = field(default_factory=dict)  # on top of BASE_ENV
    python: str = sys.executable
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _started_at: float = 0.0
    _watch: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "workshop.forkserver", "--role", self.role,
               "--socket", str(self.socket_path), "--nice", str(self.nice)]
        for path in self.preload:
            cmd += ["--preload", path]
        return cmd

    def start(self) -> None:
        """Start the process (not waiting for it to be ready)."""
        # The hub's own socket lives in a directory only root may enter; the kernels'
        # is reachable by every participant (who are told apart by their uid).
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.chmod(0o700 if self.role == "server" else 0o755)
        self.socket_path.unlink(missing_ok=True)  # a dead predecessor's: not ready
        env = {**BASE_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env}
        if "MPLCONFIGDIR" in env:
            Path(env["MPLCONFIGDIR"]).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), env=env, cwd=SERVICES,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._started_at = time.monotonic()
        log.info("fork server (%s) starting, pid %d", self.role, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """Running, and its socket in place (it binds only once everything is loaded)."""
        return self.alive() and self.socket_path.exists()

    async def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                return False
            if not self.alive() and self._watch is None:
                self.start()  # not watched (no event loop when first started): now
            await asyncio.sleep(0.1)
        return True

    def watch(self) -> None:
        """Restart the process whenever it dies, from now on (needs a running loop)."""
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(self._restart_forever())

    async def _restart_forever(self) -> None:
        while True:
            if not self.alive():
                self.start()
            assert self.proc is not None
            pidfd = os.pidfd_open(self.proc.pid)
            ended = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_reader(pidfd, ended.set)
            try:
                await ended.wait()
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
            status = self.proc.wait()
            lived = time.monotonic() - self._started_at
            self.restarts += 1
            # Quick deaths in a row are a broken fork server, not bad luck: back off.
            delay = 0.0 if lived > 60 else min(30.0, 0.5 * 2 ** min(self.restarts, 6))
            log.error("fork server (%s, pid %d) died with status %s after %.0fs; "
                      "starting a new one%s (running servers and kernels carry on)",
                      self.role, self.proc.pid, status, lived,
                      f" in {delay:.1f}s" if delay else "")
            await asyncio.sleep(delay)
            self.start()

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()


@dataclass
class ForkServers:
    server: ForkServerProcess
    kernel: ForkServerProcess

    @classmethod
    def default(cls, run_dir: Path = RUN_DIR, preload_dir: str = "/etc/jupyter",
                nice: int = 10) -> ForkServers:
        # matplotlib's font list is built once per container, into a directory of the
        # kernel fork server's, and shared by every kernel from then on.
        mpl = {"MPLCONFIGDIR": str(run_dir / "matplotlib")}
        return cls(
            server=ForkServerProcess("server", run_dir / "hub" / "server.sock",
                                     [f"{preload_dir}/server-preload.txt"], nice),
            kernel=ForkServerProcess("kernel", run_dir / "kernel.sock",
                                     [f"{preload_dir}/kernel-preload.txt"], nice, mpl),
        )

    def both(self) -> tuple[ForkServerProcess, ForkServerProcess]:
        return self.server, self.kernel

    def start(self) -> None:
        """Start both, and watch them when there is an event loop to do it with."""
        for process in self.both():
            if not process.alive():
                process.start()
        self.watch()

    def watch(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # the first spawn does it
        for process in self.both():
            process.watch()

    def stop(self) -> None:
        for process in self.both():
            process.stop()
