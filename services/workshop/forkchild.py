"""What a forked child does before anything of a participant's runs: become them.

A child of a fork server starts as a copy of a root process. Before it reads a byte a
participant chose (a kernel's request) or runs any of their code (their ~/.jupyter
config, their notebooks), it:

- closes every descriptor it inherited except the one connection it answers on
  (`keep_only`): the fork server's listening socket, other children's connections;
- becomes the participant (`become`): supplementary groups, then gid, then uid, real,
  effective and saved alike, checked afterwards; only ids in the participants' range;
- gets a session of its own (setsid: the hub's or the fork server's signals and
  terminal never reach it), and later the stdio it was given and nothing else
  (`settle_stdio`), a clean environment and its own working directory (`enter`).

Dumpable: a process that changed its uid is not dumpable, so its /proc files belong to
root. A participant's own tools (psutil, py-spy, reading /proc/self/fd) need them, and
the classic spawner's exec'd processes are dumpable too; `become` restores it once the
process holds nothing but the participant's own (the fork servers hold no secret).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .accounts import in_range

PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
MAX_FD = 1 << 20
HANDLED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


class Refused(PermissionError):
    """The child will not become this account (outside the participants' range)."""


@dataclass(frozen=True)
class Identity:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str

    @classmethod
    def of(cls, entry: pwd.struct_passwd) -> Identity:
        """A participant's identity from their passwd entry; Refused outside the range.

        Every id must be a participant's: a supplementary system group (say `docker` or
        `staff`, added by a mistake on the node) would be handed to untrusted code.
        """
        groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
        for what, value in (("uid", entry.pw_uid), ("gid", entry.pw_gid),
                            *(("group", g) for g in groups)):
            if not in_range(value):
                raise Refused(f"{entry.pw_name}: {what} {value} is not a participant's")
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir,
                   entry.pw_shell)


@dataclass(frozen=True)
class Accounts:
    """Where identities come from: the system's passwd (tests give their own)."""

    getpwnam: Callable[[str], pwd.struct_passwd] = pwd.getpwnam
    getpwuid: Callable[[int], pwd.struct_passwd] = pwd.getpwuid

    def by_name(self, name: str) -> Identity:
        try:
            return Identity.of(self.getpwnam(name))
        except KeyError:
            raise Refused(f"no account {name!r}") from None

    def by_uid(self, uid: int) -> Identity:
        if not in_range(uid):  # before any lookup: root and system users stop here
            raise Refused(f"uid {uid} is not a participant's")
        try:
            return Identity.of(self.getpwuid(uid))
        except KeyError:
            raise Refused(f"no account with uid {uid}") from None


def keep_only(*keep: int) -> None:
    """Close every descriptor except 0, 1, 2 and `keep`."""
    start = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, MAX_FD)


def reset_signals() -> None:
    """The fork server's handlers and wakeup descriptor are not the child's."""
    signal.set_wakeup_fd(-1)
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def become(identity: Identity) -> None:
    """Drop every privilege to `identity`, irreversibly, and check that it held."""
    os.setgroups(list(identity.groups))
    os.setresgid(identity.gid, identity.gid, identity.gid)
    os.setresuid(identity.uid, identity.uid, identity.uid)
    if (os.getresuid() != (identity.uid,) * 3 or os.getresgid() != (identity.gid,) * 3
            or sorted(set(os.getgroups())) != sorted(identity.groups)):
        raise Refused(f"could not become {identity.name}")  # never run anything then
    try:  # root again must be impossible now
        os.setresuid(0, 0, 0)
    except PermissionError:
        pass
    else:
        raise Refused("privileges came back after dropping them")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def settle_stdio(stdout: int | None, stderr: int | None) -> None:
    """stdin from /dev/null; stdout and stderr the given ones (else the inherited)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for target, fd in ((1, stdout), (2, stderr)):
        if fd is not None and fd != target:
            os.dup2(fd, target)
            os.close(fd)


def enter(identity: Identity, env: dict[str, str], cwd: str | None) -> None:
    """The participant's environment (and nothing of the fork server's) and directory."""
    os.environ.clear()
    os.environ.update(env)
    for where in (cwd, identity.home):
        if where and Path(where).is_dir():
            os.chdir(where)
            return
    os.chdir("/")


def check_env(env: object) -> dict[str, str]:
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k
            and "\0" not in v for k, v in env.items()):
        raise ValueError("env must map names to strings")
    return env


def set_title(argv: list[str], name: str) -> None:
    """Show `argv` in /proc/<pid>/cmdline (ps, top, the memory benchmark) and `name` as
    the process name, instead of the fork server's command line, which every child
    would otherwise show. Written over the fork server's own argv in place (like
    setproctitle): cut short when longer; cosmetic, so a failure is only skipped."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (48, 49)
        # The title, a NUL, then no NUL up to the end: Linux then reads the title up to
        # its NUL, as for setproctitle(3) (the arguments joined by spaces, like ps shows).
        title = " ".join(argv).encode()[: end - start - 2] + b"\0"
        fd = os.open("/proc/self/mem", os.O_RDWR)
        try:
            os.pwrite(fd, title.ljust(end - start, b" "), start)
        finally:
            os.close(fd)
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, ValueError, IndexError):
        pass
