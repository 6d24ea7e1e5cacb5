"""One participant goes past the memory limit: only they are stopped, the class goes on.

The limit applies to the whole container; when it is reached, Linux kills the biggest
process in it, which is the kernel that allocates unless the limit is close to what
JupyterLab itself needs (the test stack's 512M leaves room for that).

Enforcement needs the kernel's memory cgroup. Where Docker cannot apply the limit (no
memory controller) the test still checks the limit was asked for, and skips the
enforcement part saying what it found instead of the limit.
"""

from __future__ import annotations

import json
import time

import pytest
import websocket

from tests.e2e.compose_stack import Stack
from tests.e2e.containers.conftest import MEM_LIMIT, container_of, docker, inspect
from tests.e2e.hubclient import HubSession, Kernel

GIGABYTE = 1024**3
# Touches every page: the bytes are really there, unlike a lazily zeroed allocation.
HOG = f"hog = b'x' * {GIGABYTE}\nprint('allocated', len(hog))"


def cgroup_limit(user: str) -> str:
    """The memory limit the kernel's cgroup really has, as the container sees it."""
    out = docker("exec", container_of(user), "sh", "-c",
                 "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                 " || cat /sys/fs/cgroup/memory.max 2>/dev/null || echo none", check=False)
    return out.strip()


def execute_until_killed(kernel: Kernel, code: str, timeout: float = 120) -> list[str]:
    """Run `code`; what happened: 'printed:<text>', 'reply:<status>', 'restarting', 'dead',
    'closed' (the websocket went away with the server) or 'timeout'."""
    msg_id = kernel.send_execute(code, store_history=False)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    kernel.ws.settimeout(5)
    while time.monotonic() < deadline:
        try:
            msg = json.loads(kernel.ws.recv())
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, OSError):
            return [*seen, "closed"]
        kind, content = msg.get("msg_type"), msg.get("content", {})
        if kind == "status" and content.get("execution_state") in ("restarting", "dead"):
            return [*seen, content["execution_state"]]
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if kind == "stream":
            seen.append(f"printed:{content['text'].strip()}")
        elif kind == "execute_reply":
            return [*seen, f"reply:{content.get('status')}"]
    return [*seen, "timeout"]


def oom_events(container_id: str, since: float) -> list[str]:
    out = docker("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                 "--filter", f"container={container_id}", "--filter", "event=oom",
                 "--format", "{{.Action}}", check=False)
    return out.split()


def test_a_participant_over_the_memory_limit_is_stopped_alone(
        stack: Stack, alice: HubSession, bob: HubSession):
    before = {u: inspect(u) for u in ("alice", "bob")}
    assert all(before.values())
    for info in before.values():
        assert info["HostConfig"]["Memory"] == MEM_LIMIT  # asked for, whatever happens next
    limit = cgroup_limit("alice")
    if limit != str(MEM_LIMIT):
        pytest.skip(f"memory limits are not enforced here: the container's cgroup says "
                    f"{limit!r}, not {MEM_LIMIT} (HostConfig.Memory is set)")

    bobs = bob.start_kernel()
    hog = alice.start_kernel()
    try:
        assert bobs.execute("21 * 2")["result"] == "42"
        started = time.time()
        happened = execute_until_killed(hog, HOG)
        print(f"\nalice's 1 GiB allocation under a {MEM_LIMIT // 2**20} MiB limit: {happened}")
        assert f"printed:allocated {GIGABYTE}" not in happened, happened
        assert happened[-1] in ("restarting", "dead", "closed"), happened

        # Linux's OOM killer stopped the biggest process in alice's container: normally the
        # kernel that allocated (her JupyterLab restarts it), at worst her server.
        after = inspect("alice")
        oom = oom_events(before["alice"]["Id"], started - 1)
        assert oom or after is None or after["State"]["OOMKilled"], (after, oom)
        if happened[-1] != "closed":
            assert alice.server_api("GET", "/status").status_code == 200  # lives on

        # bob's kernel, in his own container, never noticed.
        assert bobs.execute("21 * 2")["result"] == "42"
        bob_after = inspect("bob")
        assert bob_after is not None and bob_after["State"]["Running"]
        assert bob_after["State"]["StartedAt"] == before["bob"]["State"]["StartedAt"]
        assert bob.server_api("GET", "/status").status_code == 200
    finally:
        bobs.close()
        hog.close()
