"""One real stack with the fork spawner for every test in this package (loopback ports
860-863, compose project workshop-fork-e2e, scratch folder tmp/e2e-fork)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.hubclient import HubSession, Kernel, started

PROJECT = "workshop-fork-e2e"
COMPOSE_FORK = Path(__file__).with_name("compose.fork.yml")
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "erin": "erin-pw",
             "teacher": "teacher-pw"}
USERS = """# e2e participants (fork spawner)
alice:alice-pw
bob:bob-pw
erin:erin-pw
[instructors]
teacher:teacher-pw
"""
ADDRESSES = local_addresses(860)

# Run inside the container as root: every process with its uids, gids, groups, parent,
# command line and descriptors (what they point at).
PROCESSES = r"""
import json, os
rows = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = dict(l.split(":\t", 1) for l in open(f"/proc/{pid}/status").read().splitlines()
                      if ":\t" in l)
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
        fds = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                fds[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
    except OSError:
        continue
    rows.append({"pid": int(pid), "ppid": int(status["PPid"]), "uid": status["Uid"].split(),
                 "gid": status["Gid"].split(), "groups": status.get("Groups", "").split(),
                 "name": status["Name"].strip(), "cmd": cmd, "fds": fds})
print(json.dumps(rows))
"""


def as_user(stack: Stack, user: str, *cmd: str) -> str:
    """Run `cmd` in the container as `user` (root there lacks CAP_SYS_PTRACE: another
    uid's /proc/<pid>/fd and mem are closed to it, its own are not)."""
    return stack.compose("exec", "-T", "-u", user, "hub", *cmd, timeout=120).stdout


def processes(stack: Stack, user: str = "root") -> list[dict]:
    """Every process in the container; descriptors only for `user`'s own."""
    return json.loads(as_user(stack, user, "python3", "-c", PROCESSES))


def fork_server_pid(stack: Stack, role: str) -> int:
    found = [p["pid"] for p in processes(stack)
             if "workshop.forkserver" in p["cmd"] and f"--role {role}" in p["cmd"]
             and p["uid"][0] == "0"]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    s = Stack(ROOT / "tmp" / "e2e-fork", project=PROJECT, port=ADDRESSES.port,
              extra_files=(COMPOSE_FORK,))
    s.down()  # a stack left over from an interrupted run
    s.prepare(USERS, {"welcome.md": "# Welcome\n"})
    with s.running("fork"):
        yield s


def with_server(name: str) -> HubSession:
    return started(name, PASSWORDS[name])


@pytest.fixture(scope="package")
def alice(stack: Stack) -> HubSession:
    return with_server("alice")


@pytest.fixture(scope="package")
def bob(stack: Stack) -> HubSession:
    return with_server("bob")


@pytest.fixture
def alice_kernel(alice: HubSession) -> Iterator[Kernel]:
    kernel = alice.start_kernel()
    try:
        yield kernel
    finally:
        kernel.close()
        alice.server_api("DELETE", f"/kernels/{kernel.id}")
