"""Participants' servers in containers of their own: real logins, spawns, saves, walls."""

from __future__ import annotations

import time

import requests

from tests.e2e.compose_stack import ROOT, Stack
from tests.e2e.containers.conftest import (
    ADDRESSES,
    DASHBOARD,
    MEM_LIMIT,
    PREFIX,
    container_of,
    docker,
    inspect,
)
from tests.e2e.hubclient import HubSession

EVENTS = f"{DASHBOARD}/events"

NOTEBOOK = [{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "1 + 1",
             "outputs": [{"output_type": "execute_result", "execution_count": 1,
                          "metadata": {}, "data": {"text/plain": "2"}}]}]


def test_each_server_runs_in_its_own_container_as_the_participant(
        stack: Stack, alice: HubSession, bob: HubSession):
    for session in (alice, bob):
        name = session.name
        info = inspect(name)
        assert info is not None, docker("ps", "-a")
        assert info["State"]["Running"] is True
        account = stack.exec("id", "-u", name).stdout.strip(), stack.exec(
            "id", "-g", name).stdout.strip()
        assert info["Config"]["User"] == ":".join(account)
        assert info["Config"]["Image"] == "workshop-hub:latest"
        host = info["HostConfig"]
        assert host["NetworkMode"] == "host" and host["AutoRemove"] is True
        assert host["Memory"] == MEM_LIMIT and host["MemorySwap"] == MEM_LIMIT
        assert host["CpuQuota"] == host["CpuPeriod"] == 100_000  # one core
        assert sorted(host["Binds"]) == sorted([
            f"{stack.home}/{name}:/home/{name}:rw", f"{ROOT}/etc/jupyter:/etc/jupyter:ro",
            f"{ROOT}/etc/ipython:/etc/ipython:ro"])  # the execution feed
        # No Docker socket and nothing of the hub's inside.
        assert not any("docker.sock" in b for b in host["Binds"])
        # The hub reaches the server on loopback, at the port the container listens on.
        server = session.user_model()["servers"][""]
        assert server["ready"] is True and server["url"] == ADDRESSES.user(name)
        assert session.server_api("GET", "/status").status_code == 200
    # The hub's own container runs no participant server any more.
    processes = stack.exec("ps", "-eo", "args").stdout
    assert "jupyterhub-singleuser" not in processes, processes
    names = docker("ps", "--filter", f"name=^{PREFIX}-", "--format", "{{.Names}}").split()
    assert sorted(names) == [container_of("alice"), container_of("bob")]


def test_kernel_runs_as_the_participant_with_their_home(stack: Stack, alice: HubSession):
    kernel = alice.start_kernel()
    try:
        out = kernel.execute("import os, getpass\n"
                             "print(os.getuid(), os.getgid(), os.environ['HOME'], "
                             "os.getcwd(), getpass.getuser(), sorted(os.listdir('/home')))")
    finally:
        kernel.close()
    uid, gid = stack.uid_of("alice"), int(stack.exec("id", "-g", "alice").stdout)
    assert out["stdout"].split(maxsplit=5) == [
        str(uid), str(gid), "/home/alice", "/home/alice", "alice", "['alice']\n"], out


def test_save_lands_in_the_host_home_and_reaches_the_dashboard(
        stack: Stack, alice: HubSession, teacher_token: str):
    r = alice.save_notebook("hello.ipynb", NOTEBOOK)
    assert r.status_code in (200, 201), r.text
    on_disk = stack.home / "alice" / "hello.ipynb"
    assert on_disk.exists() and on_disk.stat().st_uid == stack.uid_of("alice")
    home = (stack.home / "alice").stat()
    assert home.st_mode & 0o777 == 0o700 and home.st_uid == stack.uid_of("alice")
    assert (stack.home / "alice" / "welcome.md").exists()  # materials, by the hub

    deadline = time.monotonic() + 10
    events: list = []
    while time.monotonic() < deadline and not events:
        r = requests.get(EVENTS, params={"user": "alice", "path": "hello.ipynb"},
                         headers={"Authorization": f"token {teacher_token}"}, timeout=5)
        assert r.status_code == 200, r.text
        events = r.json()
        time.sleep(0.3)
    assert len(events) == 1, "the save hook's event (from the container) did not arrive"
    assert events[0]["type"] == "save-notebook"


def test_participants_are_walled_off_from_each_other_and_the_hub(
        stack: Stack, alice: HubSession, bob: HubSession):
    alice.save_notebook("private.ipynb", NOTEBOOK)
    kernel = bob.start_kernel()
    try:
        probe = ["/home/alice", "/home/alice/private.ipynb", "/srv/hub/users/users.txt",
                 "/srv/hub/state/proxy_token", "/var/run/docker.sock"]
        out = kernel.execute("import os\n"
                             f"for p in {probe!r}:\n"
                             "    print('PRESENT' if os.path.lexists(p) else 'absent')\n"
                             "print(sorted(os.listdir('/home')), os.getuid())")
    finally:
        kernel.close()
    lines = out["stdout"].splitlines()
    assert lines[:-1] == ["absent"] * len(probe), out
    assert lines[-1] == f"['bob'] {stack.uid_of('bob')}"
    # Nor through alice's server with bob's login.
    r = bob.http.get(ADDRESSES.user("alice", "api/contents/private.ipynb"),
                     allow_redirects=True, timeout=30)
    assert r.status_code in (403, 404) and "cells" not in r.text


def test_users_txt_still_applies_live(stack: Stack):
    assert not HubSession("erin").can_login("erin-pw")
    stack.write_users(stack.users_file.read_text().replace(
        "[instructors]", "erin:erin-pw\n[instructors]"))
    deadline = time.monotonic() + 15
    while not HubSession("erin").can_login("erin-pw"):
        assert time.monotonic() < deadline, "erin could not log in within 15 s"
        time.sleep(0.5)
