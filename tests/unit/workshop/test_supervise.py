"""The service supervisor (services/workshop/supervise.py), with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workshop.supervise import Supervisor

SERVICES = str(Path(__file__).resolve().parents[3] / "services")


def test_a_crashing_child_is_started_again_with_growing_pauses():
    pauses: list[float] = []
    spawned: list[int] = []
    supervisor: Supervisor

    def spawn(command):
        spawned.append(1)
        if len(spawned) == 4:
            supervisor.stopping = True  # enough: the test has seen the pattern
        return subprocess.Popen(command)

    supervisor = Supervisor([sys.executable, "-c", "raise SystemExit(3)"], spawn=spawn,
                            sleep=pauses.append)
    assert supervisor.run() == 3
    assert len(spawned) == 4 and pauses == [1.0, 2.0, 4.0]


def test_a_killed_service_is_back_within_seconds_and_sigterm_ends_both(tmp_path):
    pids = tmp_path / "pids"
    child = (f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); "
             "time.sleep(1000)")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "workshop.supervise", "--", sys.executable, "-c", child],
        env={**os.environ, "PYTHONPATH": SERVICES}, stderr=subprocess.PIPE, text=True)
    try:
        first = _wait_for_pids(pids, 1)[0]
        os.kill(first, signal.SIGKILL)  # what a crash looks like from outside
        started = time.monotonic()
        second = _wait_for_pids(pids, 2)[1]
        assert second != first and time.monotonic() - started < 5
        supervisor.send_signal(signal.SIGTERM)  # the hub stopping the service
        assert supervisor.wait(timeout=10) is not None
        time.sleep(0.2)
        assert not _alive(second)
        assert "starting it again" in supervisor.stderr.read()
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for line in pids.read_text().split() if pids.exists() else []:
            if _alive(int(line)):
                os.kill(int(line), signal.SIGKILL)


def _wait_for_pids(path: Path, count: int, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(found := path.read_text().split()) >= count:
            return [int(p) for p in found]
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} starts in {timeout}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
