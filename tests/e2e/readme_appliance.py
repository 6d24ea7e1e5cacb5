"""The appliance of the README's first command, running beside the test suite.

The README promises that its second command (the tests) passes while its first
command's appliance runs, and leaves that appliance as it was. So every end-to-end run
happens beside one: the appliance already running on this machine (compose project
`workshop`), or else one started here exactly the README's way
(`bash setup-node.sh localhost --no-tls`, from a copy of this checkout, so no file of
the developer's is touched) and removed again at the end.

A fingerprint taken before and after tells whether the suite touched it: the same hub
container (same id, never restarted), the same nginx master and enabled sites, the same
users.txt, the same homes, and /hub/health still answering through nginx.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.e2e.compose_stack import ROOT, copy_checkout
from tests.e2e.system_files import Saved, pid_of, restore, snapshot

PROJECT = "workshop"  # docker-compose.yml's `name:`
NGINX = Path("/etc/nginx")
COPY = ROOT / "tmp" / "readme-appliance"


def _run(*cmd: str, cwd: Path | None = None, timeout: float = 120) -> str:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False).stdout


def hub_container() -> dict | None:
    """`docker inspect` of the running appliance's hub, or None."""
    ids = _run("docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
               "--filter", "label=com.docker.compose.service=hub").split()
    if not ids:
        return None
    return json.loads(_run("docker", "inspect", ids[0]))[0]


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable: {e.strerror}"


def fingerprint() -> dict[str, object]:
    """What the test suite must leave exactly as it found it."""
    hub = hub_container()
    if hub is None:
        return {"hub": None}
    workdir = Path(hub["Config"]["Labels"]["com.docker.compose.project.working_dir"])
    homes = workdir / "home"
    enabled = NGINX / "sites-enabled"
    return {
        "hub": hub["Id"],
        "hub_started": hub["State"]["StartedAt"],
        "hub_restarts": hub["RestartCount"],
        "nginx": pid_of("/run/nginx.pid"),
        "sites": {p.name: _digest(p) for p in sorted(enabled.iterdir())} if enabled.is_dir()
        else {},
        "users": _digest(workdir / "etc/jupyterhub/users.txt"),
        "homes": sorted((d.name, d.stat().st_uid, d.stat().st_mode) for d in homes.iterdir()
                        if d.is_dir()) if homes.is_dir() else [],
        "health": _health(),
    }


def _health() -> int | None:
    try:
        return requests.get("http://localhost/hub/health", timeout=10).status_code
    except requests.RequestException:
        return None


def _settle(timeout: float = 180) -> None:
    """Wait until an appliance that is still starting has finished starting.

    After a reboot without systemd the engine (started again by tests/run.sh) restarts
    the hub container by its restart policy, but nothing starts nginx: the appliance is
    half up. Docker's healthcheck says when the hub itself has decided; through nginx is
    only worth waiting for while nginx runs.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _health() == 200:
            return
        hub = hub_container()
        if hub is None:
            return
        status = (hub["State"].get("Health") or {}).get("Status")
        if status in ("healthy", "unhealthy"):
            return
        if status is None and pid_of("/run/nginx.pid") is None:
            return  # no healthcheck (older appliance) and no nginx: nothing will change
        time.sleep(2)


@dataclass
class ReadmeAppliance:
    started: bool = False  # by us, the README's way
    before: dict[str, object] = field(default_factory=dict)
    _nginx_was: int | None = None
    _saved: Saved = field(default_factory=dict)

    def ensure(self) -> None:
        """Use the running appliance, or start one the README's way."""
        if hub_container() is None:
            self._start()
            self.before = fingerprint()
            if self.before["health"] != 200:
                raise RuntimeError(f"the appliance started the README's way is not healthy: "
                                   f"{self.before}")
            return
        # Found running: leave it exactly as found, even half up (no nginx after a reboot).
        _settle()
        self.before = fingerprint()
        if self.before["health"] != 200:
            warnings.warn(f"the appliance beside the tests does not answer /hub/health through "
                          f"nginx ({self.before['health']}, nginx pid {self.before['nginx']}); "
                          "the suite leaves it as it is", stacklevel=1)

    def _start(self) -> None:
        self._nginx_was = pid_of("/run/nginx.pid")
        watched = [NGINX / "sites-enabled/default", NGINX / "nginx.conf",
                   NGINX / "sites-enabled/workshop.conf", NGINX / "sites-available/workshop.conf",
                   NGINX / "snippets/workshop-proxy.conf", NGINX / "snippets/workshop-tls.conf",
                   NGINX / "conf.d/workshop-http.conf"]
        self._saved = snapshot(watched)
        shutil.rmtree(COPY, ignore_errors=True)
        copy_checkout(COPY)
        result = subprocess.run(["bash", "setup-node.sh", "localhost", "--no-tls"], cwd=COPY,
                                capture_output=True, text=True, timeout=1800, check=False)
        (ROOT / "tmp" / "readme-appliance.log").write_text(result.stdout + result.stderr)
        self.started = True
        if result.returncode != 0:
            raise RuntimeError("the README's first command failed (tmp/readme-appliance.log):\n"
                               + (result.stdout + result.stderr)[-3000:])

    def check_untouched(self) -> None:
        after = fingerprint()
        changed = {k: (v, after.get(k)) for k, v in self.before.items() if after.get(k) != v}
        if changed:
            raise AssertionError(f"the test suite changed the appliance beside it: {changed}")

    def stop_if_started(self) -> None:
        if not self.started:
            return
        _run("docker", "compose", "down", "--volumes", "--timeout", "20", cwd=COPY, timeout=300)
        restore(self._saved)
        nginx = pid_of("/run/nginx.pid")
        if self._nginx_was is None and nginx:
            os.kill(nginx, signal.SIGTERM)
        elif nginx:
            _run("nginx", "-s", "reload")
