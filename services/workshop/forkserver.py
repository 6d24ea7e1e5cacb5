"""A fork server: a root process that has imported what participants' servers (or
kernels) import, and forks a child per request that becomes the participant.

    python -m workshop.forkserver --role server --socket /run/workshop-fork/hub/server.sock \
        --preload /etc/jupyter/server-preload.txt
    python -m workshop.forkserver --role kernel --socket /run/workshop-fork/kernel.sock \
        --preload /etc/jupyter/kernel-preload.txt

Imports are paid once, here, and their pages are shared copy-on-write by every child
(`gc.freeze()` first, so the collector in the children does not write to them). The
design follows Gunicorn's preload and CJWorkbench's forkserver; the rules:

- Nothing secret is ever in this process: it is started with a clean environment, and it
  never reads a request. It accepts a connection, looks only at the peer's credentials
  (SO_PEERCRED), and forks; the child reads the request (a participant's token arrives
  that way, straight into the participant's own process), so no child can find another
  participant's token in memory inherited from here.
- It runs no thread and no event loop: forking a process with threads copies locks held
  by threads that do not exist in the child. Preloading only imports.
- Who may ask: for `server`, only root (the hub; the socket is in a 0700 directory too);
  for `kernel`, any participant, for themselves only: the child becomes the peer's uid
  before it reads a byte of the request, and refuses a request naming another uid. A
  participant has at most `--per-uid` children at once.
- A child ends up in its own session, as the participant (uid, gid, groups), with a clean
  environment, stdin /dev/null, and no other descriptor (forkchild.py), before anything
  of the participant's runs (forktargets.py).

When this process dies, its children live on (own sessions; PID 1 reaps them) and the
hub starts a new one (forksupervisor.py).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import forkchild, forktargets
from .accounts import in_range
from .forkproto import ProtocolError, peer_uid, recv_frame, send_frame

log = logging.getLogger("workshop.forkserver")

REQUEST_TIMEOUT = 10.0  # seconds a child waits for its request
ROLES = ("server", "kernel")


# Always imported first: what a child of the role runs at once. The server's includes
# the kernel provisioner, so that every forked server has it registered.
ROLE_MODULES = {"server": ["workshop.forkkernel", "jupyterhub.singleuser"],
                "kernel": ["ipykernel_launcher", "ipykernel.kernelapp"]}


def read_preload_list(path: str | os.PathLike[str]) -> list[str]:
    """Module names, one a line; blank lines and # comments ignored; a file that cannot
    be read is logged and counts as empty (the fork server still serves, just slower)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        log.warning("preload list %s not read: %s", path, e)
        return []
    names = []
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def preload(modules: list[str]) -> dict[str, float]:
    """Import `modules` (seconds each); one that fails is logged and skipped."""
    took = {}
    for name in modules:
        started = time.monotonic()
        try:
            importlib.import_module(name)
        except Exception as e:  # a missing optional module must not stop the class
            log.warning("preload: %s not imported: %s: %s", name, type(e).__name__, e)
            continue
        took[name] = time.monotonic() - started
    return took


def freeze() -> None:
    """Keep the collector off the preloaded objects, in here and in every child."""
    gc.collect()
    gc.freeze()


@dataclass
class Child:
    conn: socket.socket
    uid: int


@dataclass
class ChildTask:
    """What a child runs once it is the participant (returned out of the server loop,
    so the child's stack holds nothing of the fork server's)."""

    run: Callable[[list[str]], int]
    argv: list[str]


class ForkServer:
    def __init__(self, role: str, socket_path: str, per_uid: int = 32,
                 max_children: int = 2048, nice: int = 0,
                 accounts: forkchild.Accounts | None = None,
                 targets: dict[str, Callable[[list[str]], int]] | None = None) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self.role = role
        self.accounts = accounts or forkchild.Accounts()
        self.targets = targets or forktargets.TARGETS
        self.socket_path = Path(socket_path)
        self.per_uid = per_uid
        self.max_children = max_children
        self.nice = nice
        self.children: dict[int, Child] = {}
        self.listener: socket.socket | None = None
        self.selector: selectors.BaseSelector | None = None
        self.wakeup: tuple[int, int] | None = None

    # -- the parent ------------------------------------------------------------------------
    def listen(self) -> None:
        """Bind under a temporary name, set the mode, then rename into place: the socket
        never exists at its path with a mode that lets the wrong people in."""
        mode = 0o600 if self.role == "server" else 0o666
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.socket_path.with_name(f".{self.socket_path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(tmp))
        os.chmod(tmp, mode)
        listener.listen(128)
        listener.setblocking(False)
        os.replace(tmp, self.socket_path)
        self.listener = listener

    def serve_forever(self) -> ChildTask:
        """Accept and fork until killed; returns only in a child, with its task."""
        if self.listener is None:
            self.listen()
        assert self.listener is not None
        if threading.active_count() != 1:
            raise RuntimeError("threads running in the fork server: forking is unsafe")
        read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup = (read, write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select via the pipe
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(read, selectors.EVENT_READ)
        log.info("fork server (%s) ready on %s, pid %d", self.role, self.socket_path,
                 os.getpid())
        while True:
            for key, _ in self.selector.select():
                if key.fileobj == read:
                    while True:
                        try:
                            if not os.read(read, 512):
                                break
                        except BlockingIOError:
                            break
                    self.reap()
                else:
                    task = self.accept()
                    if task is not None:
                        return task

    def accept(self) -> ChildTask | None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return None
        try:
            uid = peer_uid(conn)
            refusal = self.refusal(uid)
            if refusal:
                log.warning("refused a %s for uid %d: %s", self.role, uid, refusal)
                self._say(conn, {"error": refusal})
                conn.close()
                return None
            pid = os.fork()
        except OSError as e:
            log.error("could not fork a %s: %s", self.role, e)
            self._say(conn, {"error": "the fork server could not fork"})
            conn.close()
            return None
        if pid == 0:
            return self.become_child(conn, uid)  # never returns on failure
        conn.setblocking(False)  # a stuck asker must never stall the fork server
        self.children[pid] = Child(conn, uid)
        return None

    def refusal(self, uid: int) -> str | None:
        """Why the peer with `uid` gets no child (judged before anything is read)."""
        if self.role == "server" and uid != 0:
            return "only the hub starts servers"
        if self.role == "kernel" and not in_range(uid):
            return f"uid {uid} is not a participant's"
        if len(self.children) >= self.max_children:
            return "too many children"
        if self.role == "kernel" and sum(c.uid == uid for c in self.children.values()
                                         ) >= self.per_uid:
            return f"at most {self.per_uid} kernels at once per participant"
        return None

    def reap(self) -> None:
        """Collect ended children and tell each asker its child's exit status."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                self._say(child.conn, {"exit": os.waitstatus_to_exitcode(status)})
                child.conn.close()

    @staticmethod
    def _say(conn: socket.socket, message: dict) -> None:
        with contextlib.suppress(OSError):  # the asker went away: nobody to tell
            send_frame(conn, message)

    # -- the child ---------------------------------------------------------------------------
    def _close_parent_state(self, keep: socket.socket) -> None:
        """Close what belongs to the fork server, through its Python objects (so none of
        them closes a reused descriptor number later), then everything else."""
        if self.selector is not None:
            self.selector.close()
        if self.listener is not None:
            self.listener.close()
        if self.wakeup is not None:
            for fd in self.wakeup:
                os.close(fd)
        for child in self.children.values():
            child.conn.close()
        self.children.clear()
        forkchild.reset_signals()
        forkchild.keep_only(keep.fileno())
        # The fork server's log format is not the child's: its logging starts bare.
        logging.root.handlers.clear()
        logging.root.setLevel(logging.WARNING)

    def become_child(self, conn: socket.socket, uid: int) -> ChildTask:
        try:
            self._close_parent_state(conn)
            os.setsid()
            if self.nice:
                os.nice(self.nice)
            conn.settimeout(REQUEST_TIMEOUT)
            task = self._prepare(conn, uid)
            forkchild.set_title(*forktargets.title(self.role, task.argv))
            pidfd = os.pidfd_open(os.getpid())
            send_frame(conn, {"pid": os.getpid()}, [pidfd])
            os.close(pidfd)
            conn.close()
            forkchild.keep_only()  # whatever came with the request and was not used
            return task
        except BaseException as e:  # whatever happened, this child ends here
            self._say(conn, {"error": f"{type(e).__name__}: {e}"[:500]})
            print(f"fork server child ({self.role}): {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
            os._exit(70)

    def _prepare(self, conn: socket.socket, uid: int) -> ChildTask:
        if self.role == "server":
            # The hub is trusted: read its request as root, then become its participant.
            request, fds = recv_frame(conn)
            for fd in fds:
                os.close(fd)  # the hub sends none; the server logs where the hub does
            identity = self.accounts.by_name(_text(request, "user"))
            forkchild.become(identity)
            stdout = stderr = None
        else:
            # A participant is not: become them first, then read what they ask.
            identity = self.accounts.by_uid(uid)
            forkchild.become(identity)
            request, fds = recv_frame(conn)
            if request.get("uid") != uid:
                raise forkchild.Refused(f"uid {uid} asked for a kernel of {request.get('uid')}")
            if len(fds) > 2:
                raise ProtocolError("at most two descriptors (stdout, stderr)")
            stdout, stderr = (*fds, None, None)[:2]
        argv = request.get("argv", [])
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ProtocolError("argv must be a list of strings")
        env = forkchild.check_env(request.get("env", {}))
        forkchild.settle_stdio(stdout, stderr)
        forkchild.enter(identity, env, request.get("cwd") if isinstance(
            request.get("cwd"), str) else None)
        return ChildTask(self.targets[self.role], argv)


def _text(request: dict, key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{key} must be a non-empty string")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--preload", action="append", default=[],
                        help="a file of module names to import first (repeatable)")
    parser.add_argument("--per-uid", type=int, default=32)
    parser.add_argument("--nice", type=int, default=0, help="children's niceness")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"[%(levelname)1.1s %(asctime)s forkserver-{args.role}] "
                               "%(message)s")
    if os.geteuid() != 0:
        parser.error("a fork server runs as root (its children become participants)")
    started = time.monotonic()
    modules = ROLE_MODULES[args.role] + [m for path in args.preload
                                         for m in read_preload_list(path)]
    took = preload(modules)
    freeze()
    log.info("preloaded %d of %d modules in %.2fs (%d in sys.modules, %d OS threads)",
             len(took), len(modules), time.monotonic() - started, len(sys.modules),
             len(os.listdir("/proc/self/task")))
    server = ForkServer(args.role, args.socket, per_uid=args.per_uid, nice=args.nice)
    task = server.serve_forever()
    # Only a child gets here: it is the participant now.
    return task.run(task.argv)


if __name__ == "__main__":
    sys.exit(main())
