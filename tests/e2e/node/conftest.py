"""setup-node.sh for real on this machine: nginx, certbot against pebble, the stack.

The project runs from a copy of the checkout (tmp/e2e-node/workshop) under its own
compose project, with a hostname made for the run (lab-<random>.test) that /etc/hosts
points at 127.0.0.1. Teardown stops what the run started, by PID, and removes what it
added to the system (hosts line, nginx site, certificate).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.compose_stack import ROOT, port_holder
from tests.e2e.node.acme import ACME_PORT, MANAGEMENT_PORT, Pebble

PROJECT = "workshop-node-e2e"
HOSTS = Path("/etc/hosts")
# certbot's account at this run's pebble: pebble forgets accounts when it stops.
PEBBLE_ACCOUNTS = Path(f"/etc/letsencrypt/accounts/127.0.0.1:{ACME_PORT}")


def copy_checkout(target: Path) -> None:
    """The files git knows (what an instructor's checkout has), without local data."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / rel)


def pid_of(pidfile: str) -> int | None:
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Node:
    host: str
    project_dir: Path
    pebble: Pebble

    def setup(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COMPOSE_PROJECT_NAME": PROJECT,
               "REQUESTS_CA_BUNDLE": str(self.pebble.ca)}
        return subprocess.run(
            ["bash", str(self.project_dir / "setup-node.sh"), self.host,
             "--acme-server", self.pebble.directory_url, "--email", "instructor@example.org",
             *args],
            capture_output=True, text=True, env=env, timeout=timeout, check=False)

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "compose", "-p", PROJECT, *args], cwd=self.project_dir,
                              capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="package")
def node() -> Iterator[Node]:
    busy = {p: who for p in (80, 443, 8000, 8081, 10101, ACME_PORT, MANAGEMENT_PORT)
            if (who := port_holder(p))}
    if busy:
        pytest.fail("ports needed by setup-node.sh are taken: "
                    + "; ".join(f"127.0.0.1:{p} by {w}" for p, w in busy.items()))
    work = ROOT / "tmp" / "e2e-node"
    shutil.rmtree(work, ignore_errors=True)
    (work / "acme").mkdir(parents=True)
    project_dir = work / "workshop"
    copy_checkout(project_dir)
    host = f"lab-{secrets.token_hex(4)}.test"
    hosts_line = f"127.0.0.1 {host}  # workshop e2e\n"
    original_hosts = HOSTS.read_text()
    HOSTS.write_text(original_hosts + hosts_line)
    cron_before = pid_of("/run/crond.pid")
    shutil.rmtree(PEBBLE_ACCOUNTS, ignore_errors=True)
    pebble = Pebble(work / "acme")
    pebble.start()
    try:
        yield Node(host, project_dir, pebble)
    finally:
        node = Node(host, project_dir, pebble)
        (work / "hub.log").write_text(node.compose("logs", "--no-color").stdout)
        node.compose("down", "--volumes", "--timeout", "20")
        pebble.stop()
        # nginx and cron were started by setup-node.sh for this run: stop them by PID.
        for pidfile in ("/run/nginx.pid",) + (() if cron_before else ("/run/crond.pid",)):
            pid = pid_of(pidfile)
            if pid:
                os.kill(pid, signal.SIGTERM)
        for path in ("/etc/nginx/sites-enabled/workshop.conf",
                     "/etc/nginx/sites-available/workshop.conf"):
            Path(path).unlink(missing_ok=True)
        subprocess.run(["certbot", "delete", "--non-interactive", "--cert-name", host],
                       capture_output=True, check=False)
        shutil.rmtree(PEBBLE_ACCOUNTS, ignore_errors=True)
        HOSTS.write_text(HOSTS.read_text().replace(hosts_line, ""))
