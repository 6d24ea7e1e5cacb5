"""Asking a fork server for a child, and holding the child: the hub does it for servers,
a participant's server for kernels (forkkernel.py).

The child is held by a pidfd it sent of itself, never by its pid alone: signals go
through the pidfd, so a pid recycled for someone else's process is never hit, and the
pidfd turns readable when the child ends, whoever its parent is (it is the fork
server's child, not ours). `ForkedProcess` looks like a `subprocess.Popen` to the code
that used one before (jupyter_client's LocalProvisioner, JupyterHub's spawner).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
from typing import Any

from .forkproto import ProtocolError, recv_frame, send_frame

ANSWER_TIMEOUT = 30.0  # a loaded machine can take a while to schedule the new child


class ForkRefused(RuntimeError):
    """The fork server or its child said no (or could not)."""


class ForkedProcess:
    stdin = stdout = stderr = None  # what Popen users look at; nothing to close here

    def __init__(self, pid: int, pidfd: int, conn: socket.socket) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.conn = conn  # the fork server tells the exit status through it
        self.returncode: int | None = None

    def __repr__(self) -> str:
        return f"<ForkedProcess pid={self.pid} returncode={self.returncode}>"

    def _ended(self, timeout: float = 0) -> bool:
        return bool(select.select([self.pidfd], [], [], timeout)[0])

    def _exit_status(self) -> int:
        """The exit status from the fork server, if it is still there to say it."""
        self.conn.settimeout(0.2)  # it reaps at once; a dead fork server says nothing
        try:
            message, fds = recv_frame(self.conn)
            for fd in fds:
                os.close(fd)
            status = message.get("exit")
            return status if isinstance(status, int) else 0
        except (OSError, ProtocolError):
            return 0  # unknown, as for a process the hub finds gone after a restart

    def poll(self) -> int | None:
        if self.returncode is None and self.pidfd >= 0 and self._ended():
            self.returncode = self._exit_status()
            self.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"process {self.pid} still running")
            self._ended(min(left, 1.0) if left is not None else 1.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Like Popen's: nothing happens once the process has ended."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # ended this very moment
                signal.pidfd_send_signal(self.pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        self.conn.close()


def fork_child(socket_path: str, request: dict[str, Any], fds: list[int] | None = None,
               timeout: float = ANSWER_TIMEOUT) -> ForkedProcess:
    """Ask the fork server at `socket_path` for a child (blocking; run it in a thread)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(timeout)
        conn.connect(socket_path)
        # Refused before it read anything: the answer it left says why.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            send_frame(conn, request, fds)
        answer, got = recv_frame(conn)
    except (OSError, ProtocolError) as e:
        conn.close()
        raise ForkRefused(f"fork server at {socket_path}: {e}") from e
    pid = answer.get("pid")
    if not isinstance(pid, int) or len(got) != 1:
        for fd in got:
            os.close(fd)
        conn.close()
        reason = answer.get("error") or f"child ended at once (status {answer.get('exit')})"
        raise ForkRefused(f"fork server at {socket_path}: {reason}")
    return ForkedProcess(pid, got[0], conn)
