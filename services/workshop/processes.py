"""Ending every process of a participant, including those started with setsid or nohup.

Stopping a participant's server signals that server's process only; anything they started
in a new session (`setsid`, `nohup ... &`, a daemonizing script) lives on under their uid.
When a participant is removed, `kill_user_processes` ends all of it.

Killing a list of pids is not enough against a process that keeps forking: a child born
after the list was read is missed. So every process of the uid is first frozen (SIGSTOP;
a stopped process cannot fork), the listing is repeated until it brings nothing new, and
only then all of them are killed; the whole round repeats until none is left, within a
time bound. Signals go through pidfds, so a pid that was recycled for someone else's
process between listing and signalling is never hit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from pathlib import Path

from .accounts import in_range

log = logging.getLogger(__name__)


def _status(pid: str, proc: Path) -> dict[str, str]:
    try:
        text = (proc / pid / "status").read_text()
    except OSError:
        return {}  # gone meanwhile
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _is_alive_of(status: dict[str, str], uid: int) -> bool:
    if not status or status.get("State", "")[:1] in ("Z", "X"):
        return False  # gone, or dead and waiting to be reaped: nothing to kill
    real, effective = status.get("Uid", "").split()[:2] or ("", "")
    return str(uid) in (real, effective)


class _Processes:
    """The living processes of one uid, each held by a pidfd once seen."""

    def __init__(self, uid: int, proc: Path) -> None:
        self.uid = uid
        self.proc = proc
        self.fds: dict[int, int] = {}
        self.names: dict[int, str] = {}

    def scan(self) -> set[int]:
        """Pids of the uid's living processes; opens a pidfd for each new one."""
        found = set()
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid in self.fds and select.select([self.fds[pid]], [], [], 0)[0]:
                # A pidfd turns readable when its process has ended: this pid is reused.
                os.close(self.fds.pop(pid))
            if pid not in self.fds:
                if not _is_alive_of(_status(entry.name, self.proc), self.uid):
                    continue
                try:
                    fd = os.pidfd_open(pid)
                except OSError:
                    continue  # exited meanwhile
                # Check again through the pidfd's process: the pid may have been recycled.
                status = _status(entry.name, self.proc)
                if not _is_alive_of(status, self.uid):
                    os.close(fd)
                    continue
                self.fds[pid] = fd
                self.names[pid] = status.get("Name", "?").strip()
            elif not _is_alive_of(_status(entry.name, self.proc), self.uid):
                continue
            found.add(pid)
        return found

    def signal(self, pids: set[int], sig: signal.Signals) -> None:
        for pid in pids:
            if pid in self.fds:  # else it ended and its pid went to another process
                with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                    signal.pidfd_send_signal(self.fds[pid], sig)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def kill_user_processes(uid: int, timeout: float = 5.0, proc: str | os.PathLike[str] = "/proc"
                        ) -> int:
    """Kill every process running as `uid` (a participant's); the number killed.

    Refuses a uid outside the participants' range: this must never hit a system process.
    """
    if not in_range(uid):
        raise ValueError(f"uid {uid} is not a participant's: not killing its processes")
    procs = _Processes(uid, Path(proc))
    deadline = time.monotonic() + timeout
    killed: set[int] = set()
    try:
        while (alive := procs.scan()) and time.monotonic() < deadline:
            frozen: set[int] = set()
            while (new := alive - frozen) and time.monotonic() < deadline:
                procs.signal(new, signal.SIGSTOP)
                frozen |= new
                alive = procs.scan()
            procs.signal(frozen, signal.SIGKILL)
            killed |= frozen
            time.sleep(0.01)  # let the kernel finish them before looking again
        left = procs.scan()
    finally:
        procs.close()
    if killed:
        names = sorted(f"{procs.names[p]} ({p})" for p in killed)
        log.info("uid %d: killed %d processes: %s", uid, len(killed), ", ".join(names))
    if left:
        log.error("uid %d: %d processes still running after %.0fs", uid, len(left), timeout)
    return len(killed)
