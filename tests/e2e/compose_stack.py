"""The real appliance under test: docker compose with a test override.

The override (compose.e2e.yml) keeps the production docker-compose.yml as it is and only
points users.txt, homes, materials and output at a scratch folder under tmp/e2e, under
its own compose project and on its own loopback ports (`port`, 4 of them, below 1024
like the real ones), so an appliance running on this machine (the README's first
command) and its data are never touched, and the two never answer for each other.
Browsers reach it at http://lab.localhost:<port>, participants at
<name>.lab.localhost:<port>.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.e2e import hubclient
from workshop.addresses import Addresses

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = Path(__file__).with_name("compose.e2e.yml")


def port_holder(port: int) -> str | None:
    """Who listens on 127.0.0.1:`port`, or None when it is free."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return None
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                         text=True, check=False).stdout.strip()
    return out or "an unknown process"


def copy_checkout(target: Path) -> None:
    """The files git knows (what an instructor's checkout has), without local data: a
    second appliance of the same version, for tests that install one the README's way."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / rel)


def local_addresses(port: int) -> Addresses:
    """A test stack's addresses: loopback ports from `port`, browsers at
    lab.localhost:port (why not localhost itself: see hubclient)."""
    return Addresses(port=port, public_url=f"http://lab.localhost:{port}")


class Stack:
    def __init__(self, workdir: Path, project: str = "workshop-e2e", port: int = 980,
                 extra_files: tuple[Path, ...] = ()) -> None:
        self.project = project
        self.addresses = local_addresses(port)
        # More compose files after the test override, e.g. docker-compose.containers.yml.
        self.extra_files = extra_files
        self.workdir = workdir
        self.home = workdir / "home"
        self.users_file = workdir / "users" / "users.txt"
        self.materials = workdir / "materials"
        self.output = workdir / "tmp"

    # -- compose --------------------------------------------------------------------------
    def compose(self, *args: str, check: bool = True,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
        files = [ROOT / "docker-compose.yml", OVERRIDE, *self.extra_files]
        env = {"E2E_DIR": str(self.workdir), "PATH": "/usr/local/bin:/usr/bin:/bin",
               "HOME": str(Path.home()), "WORKSHOP_PORT": str(self.addresses.port),
               "WORKSHOP_PUBLIC_URL": self.addresses.public_url,
               "WORKSHOP_SUBDOMAINS": "yes"}
        # Never the developer's own .env (it may switch modes or ports of their appliance).
        env_file = self.workdir.parent / f".{self.project}.env"
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text("")
        cmd = ["docker", "compose", "-p", self.project, "--env-file", str(env_file),
               *(arg for f in files for arg in ("-f", str(f))), *args]
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "hub", *cmd, check=check, timeout=120)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "hub", check=False).stdout

    # -- lifecycle ------------------------------------------------------------------------
    def prepare(self, users: str, materials: dict[str, str]) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        for d in (self.home, self.users_file.parent, self.materials, self.output):
            d.mkdir(parents=True)
        self.write_users(users)
        for name, text in materials.items():
            (self.materials / name).write_text(text)

    def write_users(self, text: str | bytes) -> None:
        """Replace users.txt the way editors do (new file, rename), like an instructor;
        bytes for what an editor in another encoding writes."""
        tmp = self.users_file.with_suffix(".tmp")
        if isinstance(text, bytes):
            tmp.write_bytes(text)
        else:
            tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(self.users_file)

    def up(self) -> float:
        """Build and start; returns the seconds until /hub/health and the dashboard answer."""
        ports = self.addresses.internal_ports()
        busy = {p: who for p in ports if (who := port_holder(p))}
        if busy:
            lines = "; ".join(f"127.0.0.1:{p} ({ports[p]}) is held by: {w}"
                              for p, w in busy.items())
            raise RuntimeError(f"cannot start the test stack: {lines}")
        started = time.monotonic()
        hubclient.use(self.addresses)  # every HubSession of the tests talks to this stack
        self.compose("up", "-d", "--build")
        self.wait_healthy()
        return time.monotonic() - started

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        urls = [self.addresses.hub("/hub/health"),
                self.addresses.service("dashboard", "health")]
        while time.monotonic() < deadline:
            try:
                if all(requests.get(u, timeout=2).status_code == 200 for u in urls):
                    self._check_ours()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"stack not healthy after {timeout}s:\n{self.logs()[-5000:]}")

    def _check_ours(self) -> None:
        """The answering hub must be this stack's: another stack started at the same moment
        would hold the ports, and every test would silently talk to it."""
        log = self.logs()
        if "EADDRINUSE" in log or "JupyterHub is now running" not in log:
            raise RuntimeError("the test stack could not bind its ports (another stack "
                               "started at the same time?):\n" + log[-3000:])

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)

    @contextmanager
    def running(self, label: str) -> Iterator[Stack]:
        """Built, started and healthy for the block; then, whatever happened, its hub log
        kept in the workdir and the stack taken down. Says how long each part took."""
        try:
            seconds = self.up()
            (self.workdir / "timings.txt").write_text(
                f"build+start to healthy: {seconds:.1f}s\n")
            print(f"\n{label} stack built and healthy in {seconds:.1f}s")
            begun = time.monotonic()
            yield self
            print(f"\n{label} tests ran {time.monotonic() - begun:.1f}s")
        finally:
            (self.workdir / "hub.log").write_text(self.logs())
            self.down()

    # The dashboard itself, not the supervisor that starts it again (workshop/supervise.py),
    # whose command line ends the same way.
    DASHBOARD_PROCESS = "^[^ ]*python3 -m dashboard"

    def dashboard_pid(self) -> int:
        """The dashboard process's pid in the hub's container, 0 when there is none."""
        out = self.exec("pgrep", "-f", self.DASHBOARD_PROCESS, check=False).stdout.split()
        return int(out[0]) if out else 0

    def uid_of(self, user: str) -> int:
        return int(self.exec("id", "-u", user).stdout.strip())
