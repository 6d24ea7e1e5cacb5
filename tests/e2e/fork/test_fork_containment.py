"""What the fork spawner guarantees, in the real stack: a participant's forked server and
kernels are theirs alone (uid, gid, groups, nothing inherited), hold no secret of the
hub's, cannot get a kernel as somebody else, and outlive a crash of the fork servers."""

from __future__ import annotations

import json

from tests.e2e.compose_stack import Stack
from tests.e2e.fork.conftest import as_user, fork_server_pid, processes, with_server
from tests.e2e.hubclient import HubSession, Kernel, within

# Run as root inside the container: which of the needles each pid's memory holds.
SCAN = r"""
import json, sys
job = json.loads(sys.argv[1])
found = {}
for pid in job["pids"]:
    hits = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            hits |= {name for name, needle in job["needles"].items()
                     if needle.encode() in data}
    found[str(pid)] = sorted(hits)
print(json.dumps(found))
"""

# A participant's own client for the kernel fork server, run in their kernel: asks for
# a kernel of `uid` and prints the answer.
ASK_FOR = """
import json, os, socket, struct
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(os.environ["WORKSHOP_KERNEL_FORK_SOCKET"])
body = json.dumps({{"uid": {uid}, "argv": ["-f", "/tmp/nothing.json"], "env": {{}}}}).encode()
s.sendall(struct.pack("!I", len(body)) + body)
size = struct.unpack("!I", s.recv(4))[0]
print(s.recv(size).decode())
"""

# Run in a participant's kernel: tries to read what /proc shows of `pids`.
READ_PROC = """
for pid in pids:
    for what in ("environ", "mem", "maps"):
        try:
            open(f"/proc/{pid}/{what}", "rb").read(1)
            print("READ", pid, what)
        except PermissionError:
            print("denied")
"""


def _theirs(stack: Stack, user: str) -> tuple[list[dict], list[dict]]:
    """`user`'s forked servers and kernels (children of the two fork servers)."""
    uid = str(stack.uid_of(user))
    rows = processes(stack, user)
    servers_parent = fork_server_pid(stack, "server")
    kernels_parent = fork_server_pid(stack, "kernel")
    mine = [p for p in rows if p["uid"][0] == uid]
    return ([p for p in mine if p["ppid"] == servers_parent],
            [p for p in mine if p["ppid"] == kernels_parent])


def test_server_and_kernel_are_the_participants_with_nothing_inherited(
        stack: Stack, alice: HubSession, alice_kernel: Kernel):
    assert alice_kernel.execute("print(1)")["stdout"].strip() == "1"
    servers, kernels = _theirs(stack, "alice")
    assert len(servers) == 1 and len(kernels) >= 1, (servers, kernels)
    uid = str(stack.uid_of("alice"))
    gid = stack.exec("id", "-g", "alice").stdout.strip()
    rows = processes(stack)
    hub = next(p for p in rows if "jupyterhub --config" in p["cmd"])
    # The hub's stdout and stderr (the container's log) are shared on purpose, as with
    # the classic spawner: servers write their log there, kernels echo to it.
    log = {hub["fds"]["1"], hub["fds"]["2"]}
    # Every other socket and pipe a root process (hub, proxy, services, fork servers) holds.
    roots = {target for p in rows if p["uid"][0] == "0" for target in p["fds"].values()
             if target.startswith(("socket:", "pipe:"))} - log
    for process in servers + kernels:
        assert process["uid"] == [uid] * 4 and process["gid"] == [gid] * 4
        assert process["groups"] == [gid]
        assert process["fds"]["0"] == "/dev/null"
        leaked = {fd: t for fd, t in process["fds"].items()
                  if t in roots or t.startswith("/srv/hub")}
        assert not leaked, (process["cmd"], leaked)
    assert {servers[0]["fds"]["1"], servers[0]["fds"]["2"]} == log


def test_no_hub_secret_in_a_participants_processes(stack: Stack, alice: HubSession,
                                                   bob: HubSession, alice_kernel: Kernel):
    bob_kernel = bob.start_kernel()
    try:
        bob_token = bob_kernel.execute(
            "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])")["stdout"].strip()
        alice_token = alice_kernel.execute(
            "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])")["stdout"].strip()
    finally:
        bob_kernel.close()
    rows = processes(stack)
    needles = {
        "cookie secret": stack.exec("cat", "/srv/hub/state/jupyterhub_cookie_secret"
                                    ).stdout.strip(),
        "proxy token": stack.exec("cat", "/srv/hub/state/proxy_token").stdout.strip(),
        "dashboard cookie secret": stack.exec(
            "cat", "/srv/hub/state/dashboard/cookie_secret").stdout.strip(),
        "bob's token": bob_token, "alice's token": alice_token,
    }
    services = {"dashboard": "-m dashboard", "users-sync": "-m workshop.usersync",
                "idle-culler": "-m jupyterhub_idle_culler"}
    for role, needle in services.items():
        service = next(p for p in rows if p["uid"][0] == "0" and needle in p["cmd"])
        env = stack.exec("cat", f"/proc/{service['pid']}/environ").stdout.split("\0")
        needles[f"{role}'s token"] = next(e.split("=", 1)[1] for e in env
                                          if e.startswith("JUPYTERHUB_API_TOKEN="))
    assert all(len(v) >= 16 for v in needles.values()), needles.keys()
    servers, kernels = _theirs(stack, "alice")
    fork_servers = [fork_server_pid(stack, "server"), fork_server_pid(stack, "kernel")]
    pids = [p["pid"] for p in servers + kernels] + fork_servers
    found = {}
    for user, some in (("alice", pids[:-2]), ("root", fork_servers)):
        job = json.dumps({"pids": some, "needles": needles})
        found.update(json.loads(as_user(stack, user, "python3", "-c", SCAN, job)))
    # The scan finds what is there: alice's own token in her server.
    assert found[str(servers[0]["pid"])] == ["alice's token"], found
    for pid in pids:
        expected = ["alice's token"] if pid not in fork_servers else []
        assert set(found[str(pid)]) <= set(expected), (pid, found[str(pid)])
    # Nor can the participant read the fork servers' or the hub's memory or environment.
    hub = next(p["pid"] for p in rows if "jupyterhub --config" in p["cmd"])
    probe = alice_kernel.execute(f"pids = {[*fork_servers, hub]!r}\n" + READ_PROC)
    assert probe["stdout"].split() == ["denied"] * 9, probe


def test_a_kernel_as_somebody_else_is_refused(stack: Stack, alice: HubSession,
                                              bob: HubSession, alice_kernel: Kernel):
    bob_uid = stack.uid_of("bob")
    before = [p["pid"] for p in processes(stack) if p["uid"][0] == str(bob_uid)]
    for uid in (bob_uid, 0):
        out = alice_kernel.execute(ASK_FOR.format(uid=uid))
        answer = json.loads(out["stdout"])
        assert "asked for a kernel of" in answer["error"], out
    after = [p["pid"] for p in processes(stack) if p["uid"][0] == str(bob_uid)]
    assert after == before  # nothing started for bob
    # The servers' fork server is the hub's alone.
    out = alice_kernel.execute(
        "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect('/run/workshop-fork/hub/server.sock')\n    print('CONNECTED')\n"
        "except PermissionError:\n    print('denied')\n")
    assert out["stdout"].strip() == "denied", out


def test_kernels_are_forked_with_the_class_libraries_loaded_and_their_own_randomness(
        stack: Stack, alice: HubSession, bob: HubSession, alice_kernel: Kernel):
    code = ("import sys; loaded = 'pandas' in sys.modules\n"
            "import numpy; print(loaded, numpy.random.rand())")
    bob_kernel = bob.start_kernel()
    try:
        mine = alice_kernel.execute(code)["stdout"].split()
        theirs = bob_kernel.execute(code)["stdout"].split()
    finally:
        bob_kernel.close()
    assert mine[0] == theirs[0] == "True"  # preloaded: the first import is instant
    assert mine[1] != theirs[1]  # each kernel seeded on its own, not the fork server's
    _, kernels = _theirs(stack, "alice")
    assert kernels, "alice's kernel is not a child of the kernel fork server"


def test_a_crashed_fork_server_is_replaced_and_running_work_carries_on(
        stack: Stack, alice: HubSession, alice_kernel: Kernel):
    assert alice_kernel.execute("x = 41")["error"] == ""
    old = {role: fork_server_pid(stack, role) for role in ("server", "kernel")}
    for pid in old.values():
        stack.exec("kill", "-9", str(pid))

    def replaced() -> bool:
        try:
            return all(fork_server_pid(stack, r) != old[r] for r in old) and stack.exec(
                "test", "-S", "/run/workshop-fork/kernel.sock", check=False).returncode == 0
        except AssertionError:
            return False  # not there yet

    took = within(90, replaced, "new fork servers")
    print(f"\nfork servers replaced within {took:.1f}s")
    assert "died with status" in stack.logs()
    # What ran carries on: alice's server answers, her kernel still has its state.
    assert alice.server_api("GET", "/status").status_code == 200
    assert alice_kernel.execute("print(x + 1)")["stdout"].strip() == "42"
    # What starts now is forked by the new ones.
    erin = with_server("erin")
    servers, _ = _theirs(stack, "erin")
    assert len(servers) == 1
    kernel = alice.start_kernel()
    try:
        assert kernel.execute("print(2 * 21)")["stdout"].strip() == "42"
        _, kernels = _theirs(stack, "alice")
        assert len(kernels) >= 1
    finally:
        kernel.close()
    erin.hub_api("DELETE", "/users/erin/server")


def test_kernels_listen_on_unix_sockets_in_a_private_directory(alice_kernel: Kernel):
    out = alice_kernel.execute(
        "import json, os\nfrom ipykernel.connect import get_connection_file\n"
        "info = json.load(open(get_connection_file()))\n"
        "home = os.stat(os.path.dirname(get_connection_file()))\n"
        "print(info['transport'], oct(home.st_mode & 0o777), home.st_uid == os.getuid())")
    assert out["stdout"].split() == ["ipc", "0o700", "True"], out
