"""Ending a removed participant's processes, for real, with spare uids nobody uses.

A root harness process starts the participant's processes (as uid 59998: a setsid'd
sleep, a nohup'd sleep, a daemon that keeps forking) and reaps whatever the kill leaves
as zombies (it is their subreaper), so nothing stays behind on the test machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workshop.processes import kill_user_processes

TARGET, BYSTANDER = 59998, 59997  # unused here; both in the participants' range

HARNESS = r"""
import ctypes, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come to us
target, bystander = int(sys.argv[1]), int(sys.argv[2])
FORKER = '''
import os, sys, time
if os.fork():
    sys.exit(0)  # daemonize: the parent exits, the child lives on in a new session
os.setsid()
for _ in range(2000):  # keeps making children until killed (bounded, should it escape)
    if os.fork() == 0:
        time.sleep(1000)
        os._exit(0)
    time.sleep(0.005)
'''
def run(uid, *cmd):
    return subprocess.Popen(cmd, user=uid, group=uid, extra_groups=[], cwd="/",
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
run(target, "setsid", "sleep", "1000")
run(target, "nohup", "sleep", "1000")
run(target, "/usr/bin/python3", "-c", FORKER)
keep = run(bystander, "sleep", "1000")
print("started", flush=True)
deadline = time.time() + 60
while time.time() < deadline:  # reap everything; once the test is done, end the bystander
    if os.path.exists(sys.argv[3]) and keep.returncode is None:
        keep.kill()
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break  # no child left
    if pid == keep.pid:
        keep.returncode = -9
    elif not pid:
        time.sleep(0.01)
"""


def living(uid: int) -> list[int]:
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
        except OSError:
            continue
        if fields["Uid"].split()[0] == str(uid) and fields["State"][0] not in "ZX":
            pids.append(int(status.parent.name))
    return pids


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
                    reason="needs root to run processes as another uid")
def test_every_process_of_the_uid_ends_forkers_and_setsid_included(tmp_path):
    assert not living(TARGET) and not living(BYSTANDER), "the spare uids are in use here"
    done = tmp_path / "done"
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(TARGET), str(BYSTANDER),
                                str(done)], stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout.readline() == "started\n"
        deadline = time.monotonic() + 10
        while len(living(TARGET)) < 10:  # the forker is busy making children
            assert time.monotonic() < deadline, living(TARGET)
            time.sleep(0.05)

        started = time.monotonic()
        killed = kill_user_processes(TARGET, timeout=5)
        took = time.monotonic() - started
        assert killed >= 10 and took < 5
        assert living(TARGET) == []
        time.sleep(0.5)  # a child forked at the last moment would show up now
        assert living(TARGET) == []
        assert len(living(BYSTANDER)) == 1  # someone else's process is never touched
    finally:
        done.touch()
        harness.wait(30)
        for uid in (TARGET, BYSTANDER):  # should anything have escaped: not on this machine
            for pid in living(uid):
                os.kill(pid, signal.SIGKILL)
    assert living(BYSTANDER) == []


@pytest.mark.parametrize("uid", [0, 1, 33, 1000, 1999, 60000, 65534])
def test_system_uids_are_refused(uid: int):
    with pytest.raises(ValueError, match="not a participant's"):
        kill_user_processes(uid)


def test_a_uid_without_processes_is_quick_and_zero():
    started = time.monotonic()
    assert kill_user_processes(59996) == 0
    assert time.monotonic() - started < 1
