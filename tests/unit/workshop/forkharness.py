"""A real fork server for the tests, with spare uids instead of accounts and children
that report what they have become instead of running JupyterLab.

    python -m tests.unit.workshop.forkharness ROLE SOCKET HOMES [PER_UID]

The harness is a subreaper: the fork server is its child, and children orphaned when a
test kills the fork server come back to it and are reaped, so nothing is left behind on
the test machine. It prints the fork server's pid first.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import signal
import sys
import time

from workshop.forkchild import Accounts
from workshop.forkserver import ForkServer

USERS = {"fork-a": 59990, "fork-b": 59991}  # in the participants' range, unused here
OUTSIDERS = {"fork-root": 0, "fork-daemon": 1}  # accounts no child may become
PR_SET_CHILD_SUBREAPER, PR_GET_DUMPABLE = 36, 3


def accounts(homes: str) -> Accounts:
    table = {**USERS, **OUTSIDERS}

    def entry(name: str) -> pwd.struct_passwd:
        uid = table[name]
        return pwd.struct_passwd((name, "x", uid, uid, "", f"{homes}/{name}", "/bin/sh"))

    def by_uid(uid: int) -> pwd.struct_passwd:
        return entry(next(n for n, u in table.items() if u == uid))

    def by_name(name: str) -> pwd.struct_passwd:
        return entry(name)

    return Accounts(getpwnam=by_name, getpwuid=by_uid)


def facts() -> dict:
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory listing's own descriptor, closed again
    libc = ctypes.CDLL(None)
    return {"resuid": os.getresuid(), "resgid": os.getresgid(), "groups": os.getgroups(),
            "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
            "cwd": os.getcwd(), "env": dict(os.environ), "fds": fds,
            "dumpable": libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), "nice": os.nice(0),
            "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
            "sigchld": str(signal.getsignal(signal.SIGCHLD)), "argv": sys.argv}


def report(argv: list[str]) -> int:
    """Write what this child is to argv[0]; then live for argv[1] seconds, if given."""
    out = facts()
    with open(argv[0] + ".tmp", "w") as f:
        json.dump(out, f)
    os.rename(argv[0] + ".tmp", argv[0])
    if len(argv) > 1:
        time.sleep(float(argv[1]))
    return 0


def main() -> None:
    role, socket_path, homes = sys.argv[1:4]
    per_uid = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid = os.fork()
    if pid == 0:
        server = ForkServer(role, socket_path, per_uid=per_uid, nice=3,
                            accounts=accounts(homes), targets={role: report})
        task = server.serve_forever()
        sys.exit(task.run(task.argv))
    print(pid, flush=True)
    while True:  # reap the fork server and any orphan of it, until killed
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.1)


if __name__ == "__main__":
    main()
