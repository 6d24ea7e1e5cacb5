"""The fork server's guarantees, against a real fork server (tests/unit/workshop/
forkharness.py) run as root with spare uids: what a child becomes, who may ask for what,
and what a child can never find (another's token, the fork server's secrets)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.workshop.forkharness import USERS
from workshop.forkclient import ForkedProcess, ForkRefused, fork_child
from workshop.forkproto import HEADER, MAX_FRAME, recv_frame, send_frame
from workshop.processes import kill_user_processes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a fork server runs as root")

ROOT = Path(__file__).resolve().parents[3]
A, B = USERS["fork-a"], USERS["fork-b"]
CANARY = "hub-secret-7f3c9a1e5b"  # in the fork server's environment, as a careless hub's
# An unprivileged process asking the kernel fork server, as a participant's server does.
# /usr/bin/python3: the test venv's interpreter is not reachable for other uids here.
ASKER = """
import json, sys
sys.path.insert(0, {services!r})
from workshop.forkclient import ForkRefused, fork_child
try:
    child = fork_child({socket!r}, json.loads(sys.argv[1]), [1, 2])
    print(json.dumps({{"pid": child.pid, "exit": child.wait(30)}}))
except ForkRefused as e:
    print(json.dumps({{"refused": str(e)}}))
"""


class Harness:
    def __init__(self, role: str, scratch: Path, per_uid: int = 32) -> None:
        self.scratch = scratch
        self.socket = scratch / "run" / f"{role}.sock"
        self.socket.parent.mkdir(mode=0o755)
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{ROOT / 'services'}:{ROOT}",
               "HUB_TOKEN": CANARY}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.workshop.forkharness", role, str(self.socket),
             str(scratch / "homes"), str(per_uid)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.server_pid = int(self.proc.stdout.readline())
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            assert time.monotonic() < deadline, "fork server did not listen"
            time.sleep(0.05)

    def out(self, name: str) -> str:
        return str(self.scratch / "out" / name)

    def facts(self, name: str, timeout: float = 10) -> dict:
        path = Path(self.out(name))
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, f"no report {name}"
            time.sleep(0.05)
        return json.loads(path.read_text())

    def serve(self, user: str, argv: list[str], env: dict | None = None) -> ForkedProcess:
        return fork_child(str(self.socket), {"user": user, "argv": argv,
                                             "env": env or {"JUPYTERHUB_USER": user},
                                             "cwd": str(self.scratch / "homes" / user)})

    def ask_as(self, uid: int, request: dict) -> dict:
        script = ASKER.format(services=str(ROOT / "services"), socket=str(self.socket))
        done = subprocess.run(["/usr/bin/python3", "-c", script, json.dumps(request)],
                              user=uid, group=uid, extra_groups=[], capture_output=True,
                              text=True, timeout=60, cwd="/")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def stop(self) -> None:
        for pid in (self.server_pid, self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder every spare uid can reach (pytest's tmp_path is root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="forktest-", dir="/tmp"))
    top.chmod(0o755)
    (top / "out").mkdir(mode=0o777)
    (top / "out").chmod(0o777)
    for name, uid in USERS.items():
        home = top / "homes" / name
        home.mkdir(parents=True)
        os.chown(home, uid, uid)
        home.chmod(0o700)
    try:
        yield top
    finally:
        for uid in USERS.values():
            kill_user_processes(uid)
        shutil.rmtree(top)


@pytest.fixture
def servers(scratch: Path) -> Iterator[Harness]:
    harness = Harness("server", scratch)
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture
def kernels(scratch: Path) -> Iterator[Harness]:
    harness = Harness("kernel", scratch, per_uid=3)
    try:
        yield harness
    finally:
        harness.stop()


def test_a_child_is_the_participant_and_nothing_else(servers: Harness):
    child = servers.serve("fork-a", [servers.out("a")], env={"ONLY": "this"})
    assert child.wait(10) == 0
    facts = servers.facts("a")
    assert facts["resuid"] == [A, A, A] and facts["resgid"] == [A, A, A]
    assert facts["groups"] == [A]  # no supplementary group of root's
    assert facts["sid"] == facts["pid"] == facts["pgid"]  # a session of its own
    assert facts["cwd"] == str(servers.scratch / "homes" / "fork-a")
    assert facts["env"] == {"ONLY": "this"}  # neither the fork server's nor the hub's
    assert CANARY not in json.dumps(facts)
    # Only stdin (/dev/null), stdout and stderr: no socket, pipe or file of the server's.
    assert sorted(facts["fds"]) == ["0", "1", "2"], facts["fds"]
    assert facts["fds"]["0"] == "/dev/null"
    assert facts["dumpable"] == 1 and facts["nice"] == 3
    assert facts["blocked"] == [] and facts["sigchld"] in ("0", "Handlers.SIG_DFL")


def test_a_child_cannot_become_root_again(servers: Harness):
    child = servers.serve("fork-a", [servers.out("a"), "30"])
    servers.facts("a")
    status = Path(f"/proc/{child.pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    caps = {line.split(":")[0]: line.split()[1] for line in status.splitlines()
            if line.startswith("Cap")}
    assert uids == [str(A)] * 4  # real, effective, saved, filesystem
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0
    child.kill()
    assert child.wait(10) == -signal.SIGKILL


@pytest.mark.parametrize("user", ["fork-root", "fork-daemon", "nobody-here"])
def test_no_child_for_accounts_outside_the_participants_range(servers: Harness, user: str):
    with pytest.raises(ForkRefused, match=r"not a participant's|no account"):
        servers.serve(user, [servers.out(user)])
    assert not Path(servers.out(user)).exists()


def test_only_root_may_ask_for_a_server(servers: Harness):
    servers.socket.chmod(0o666)  # even if the directory and socket modes were wrong
    answer = servers.ask_as(A, {"user": "fork-a", "argv": [servers.out("a")]})
    assert "only the hub starts servers" in answer["refused"]
    assert not Path(servers.out("a")).exists()


def test_a_kernel_is_its_askers_own(kernels: Harness):
    answer = kernels.ask_as(A, {"uid": A, "argv": [kernels.out("k")], "env": {"K": "1"},
                                "cwd": str(kernels.scratch / "homes" / "fork-a")})
    assert answer["exit"] == 0, answer
    facts = kernels.facts("k")
    assert facts["resuid"] == [A, A, A] and facts["groups"] == [A]
    assert facts["env"] == {"K": "1"} and sorted(facts["fds"]) == ["0", "1", "2"]
    # Its output goes where the asker's does (passed along), not to the fork server's.
    assert facts["fds"]["1"] != os.readlink(f"/proc/{kernels.server_pid}/fd/1")


def test_a_kernel_for_another_uid_is_refused(kernels: Harness):
    answer = kernels.ask_as(A, {"uid": B, "argv": [kernels.out("k")]})
    assert f"uid {A} asked for a kernel of {B}" in answer["refused"]
    assert not Path(kernels.out("k")).exists()


def test_root_gets_no_kernel(kernels: Harness):
    with pytest.raises(ForkRefused, match="uid 0 is not a participant's"):
        fork_child(str(kernels.socket), {"uid": 0, "argv": [kernels.out("k")]})


def test_a_kernel_request_is_read_only_as_the_asker(kernels: Harness):
    """The child becomes the peer before it reads a byte: one waiting for its request is
    already the participant."""
    script = ("import socket,time,sys; s=socket.socket(socket.AF_UNIX); "
              f"s.connect({str(kernels.socket)!r}); print('connected', flush=True); "
              "time.sleep(5)")
    asker = subprocess.Popen(["/usr/bin/python3", "-c", script], user=A, group=A,
                             extra_groups=[], stdout=subprocess.PIPE, text=True)
    try:
        assert asker.stdout is not None and asker.stdout.readline().strip() == "connected"
        answer_pids = _children_of(kernels.server_pid, within=5)
        deadline = time.monotonic() + 5
        while True:  # it drops to the asker's uid before waiting for the request
            uids = Path(f"/proc/{answer_pids[0]}/status").read_text().split("Uid:")[1].split()
            if uids[:4] == [str(A)] * 4 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert uids[:4] == [str(A)] * 4
    finally:
        asker.kill()
        asker.wait()


def _children_of(pid: int, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [int(p) for p in os.listdir("/proc") if p.isdigit()
                 and _ppid(p) == pid]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no child of {pid}")


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_a_participant_has_a_bounded_number_of_kernels(kernels: Harness):
    held = [kernels.ask_as(A, {"uid": A, "argv": [kernels.out(f"k{i}"), "0"]})
            for i in range(2)]
    assert all(h["exit"] == 0 for h in held)  # ended ones do not count
    script = ASKER.format(services=str(ROOT / "services"), socket=str(kernels.socket))
    sleepers = [subprocess.Popen(["/usr/bin/python3", "-c", script,
                                  json.dumps({"uid": A, "argv": [kernels.out(f"s{i}"), "20"]})],
                                 user=A, group=A, extra_groups=[], stdout=subprocess.PIPE,
                                 text=True) for i in range(3)]
    try:
        for i in range(3):
            kernels.facts(f"s{i}")
        answer = kernels.ask_as(A, {"uid": A, "argv": [kernels.out("over")]})
        assert "at most 3 kernels" in answer["refused"]
        assert kernels.ask_as(B, {"uid": B, "argv": [kernels.out("b")]})["exit"] == 0
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether `needle` is anywhere in the readable memory of `pid` (read as root)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except OSError:
                continue
    return False


def test_no_token_of_one_child_reaches_the_fork_server_or_the_next_child(servers: Harness):
    token_a = "participant-a-token-" + os.urandom(8).hex()
    first = servers.serve("fork-a", [servers.out("a"), "30"],
                          env={"JUPYTERHUB_API_TOKEN": token_a})
    servers.facts("a")
    second = servers.serve("fork-b", [servers.out("b"), "30"])
    servers.facts("b")
    assert _memory_holds(first.pid, token_a.encode())  # the search does find it
    assert not _memory_holds(servers.server_pid, token_a.encode())
    assert not _memory_holds(second.pid, token_a.encode())
    for child in (first, second):
        child.kill()


def test_children_outlive_a_crashed_fork_server(servers: Harness):
    child = servers.serve("fork-a", [servers.out("a"), "30"])
    servers.facts("a")
    os.kill(servers.server_pid, signal.SIGKILL)
    time.sleep(0.3)
    assert child.poll() is None  # still running, still held by its pidfd
    child.terminate()
    assert child.wait(10) == 0  # the exit status is unknown now: 0, as JupyterHub does


@pytest.mark.parametrize("frame", [
    HEADER.pack(MAX_FRAME + 1),  # announced too long: judged by its header
    HEADER.pack(5) + b"[1,2]",  # not an object
    HEADER.pack(3) + b"\xff\xfe{",  # not JSON
])
def test_malformed_requests_get_no_child(servers: Harness, frame: bytes):
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(10)
    conn.connect(str(servers.socket))
    conn.sendall(frame)
    answer, _ = recv_frame(conn)
    assert "error" in answer
    conn.close()


def test_frames_carry_descriptors_both_ways():
    left, right = socket.socketpair()
    with left, right, open(os.devnull) as null:
        send_frame(left, {"hello": "world"}, [null.fileno()])
        message, fds = recv_frame(right)
        assert message == {"hello": "world"} and len(fds) == 1
        assert os.readlink(f"/proc/self/fd/{fds[0]}") == "/dev/null"
        os.close(fds[0])
