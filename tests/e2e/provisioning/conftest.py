"""Fixtures for driving the real create-node.py against the fake API and a real sshd.

Everything listens on 127.0.0.1; every process started here is stopped by its
PID at teardown. No Docker is needed: setup-node.sh runs with `--only check`
(or a step that does not exist, to test failure reporting).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.provisioning.support import CREATE_NODE, DNS_TOKEN, DOMAIN, FQDN, TOKEN
from tests.fakes.digitalocean import FakeDigitalOcean
from tests.fakes.hubhealth import HubHealth
from tests.fakes.sshd import Sshd, free_port, keygen
from tests.fakes.tls import TestCA, make_ca


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "provisioning: create-node.py end to end (fake DigitalOcean API, real sshd)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.provisioning)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@dataclass(frozen=True)
class UserKey:
    path: Path
    public: str


@pytest.fixture(scope="session")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> UserKey:
    path = tmp_path_factory.mktemp("laptop") / "id_ed25519"
    return UserKey(path, keygen(path, "instructor@laptop"))


@pytest.fixture
def fake_do(ca: TestCA, tmp_path: Path, user_key: UserKey) -> Iterator[FakeDigitalOcean]:
    fake = FakeDigitalOcean(ca=ca, workdir=tmp_path / "fake-do", token=TOKEN)
    fake.add_ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4H0cQ0o1k2Jd5Cw5Yx2Qx1n8Xc3Vv3m2t"
                     "0q9Qx4Ydl someone-else", name="colleague")
    fake.add_ssh_key(user_key.public)
    fake.add_domain(DOMAIN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def hub(ca: TestCA, tmp_path: Path) -> Iterator[HubHealth]:
    server = HubHealth(ca, tmp_path, [FQDN]).start()
    yield server
    server.stop()


class Servers:
    """sshd instances started by one test; all stopped by PID at teardown."""

    def __init__(self, workdir: Path, authorized_key: str) -> None:
        self.workdir = workdir
        self.authorized_key = authorized_key
        self.started: list[Sshd] = []

    def sshd(self, host_key: Path, port: int | None = None, listen: str = "127.0.0.1",
             pid_file: Path | None = None) -> Sshd:
        server = Sshd(self.workdir / f"sshd{len(self.started)}", self.authorized_key,
                      listen=listen, pid_file=pid_file)
        if port is not None:
            server.port = port
        self.started.append(server)
        return server.start(host_key)

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def servers(tmp_path: Path, user_key: UserKey) -> Iterator[Servers]:
    found = Servers(tmp_path / "servers", user_key.public)
    yield found
    found.stop_all()


class DropletBoot:
    """Makes every droplet the fake creates 'boot' as a real sshd with its cloud-init host key.

    It reads the user data the way cloud-init would (YAML, ssh_keys), writes the
    ed25519 key where a droplet has it (/etc/ssh/ssh_host_ed25519_key, under the
    test's node root) and starts sshd with that file as its HostKey and its pid
    file at /run/sshd.pid under the node root: the host key create-node.py pins is
    exactly the one it handed over, and its rotation (new key files, SIGHUP) works
    on this sshd as on a droplet. All droplets share one SSH port, as if each were
    at 127.0.0.1:port.
    """

    def __init__(self, servers: Servers, node_root: Path, fake: FakeDigitalOcean) -> None:
        self.servers = servers
        self.fake = fake
        self.node_root = node_root
        self.port = free_port()
        self.sshd: Sshd | None = None
        self.cloud_config: dict[str, Any] | None = None
        self.host_key = node_root / "etc" / "ssh" / "ssh_host_ed25519_key"
        self.pid_file = node_root / "run" / "sshd.pid"
        # Set image_key to boot with the image's own host key first, as an sshd that
        # starts before cloud-init would, and switch to ours after image_seconds.
        self.image_key: Path | None = None
        self.image_seconds = 2.0
        self.timers: list[threading.Timer] = []

    def __call__(self, droplet: dict[str, Any], body: dict[str, Any]) -> None:
        user_data = body["user_data"]
        assert user_data.startswith("#cloud-config\n")
        self.cloud_config = yaml.safe_load(user_data)
        keys = self.cloud_config["ssh_keys"]
        self.host_key.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.host_key.write_text(keys["ed25519_private"])
        self.host_key.chmod(0o600)
        Path(f"{self.host_key}.pub").write_text(keys["ed25519_public"] + "\n")
        if self.image_key is None:
            self._serve(self.host_key)
        else:
            self._serve(self.image_key)
            timer = threading.Timer(self.image_seconds, self._serve, (self.host_key,))
            self.timers.append(timer)
            timer.start()

    def _serve(self, host_key: Path) -> None:
        if self.sshd is not None:
            self.sshd.stop()
        # The droplet's address is whatever the fake hands out (a loopback address).
        self.sshd = self.servers.sshd(host_key, self.port, listen=self.fake.droplet_ip,
                                      pid_file=self.pid_file)

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()
            timer.join(timeout=15)


@pytest.fixture
def node_root(tmp_path: Path) -> Path:
    """The droplet's / for the files create-node.py puts outside --remote-dir."""
    return tmp_path / "node-root"


@pytest.fixture
def droplet_boot(fake_do: FakeDigitalOcean, servers: Servers,
                 node_root: Path) -> Iterator[DropletBoot]:
    boot = DropletBoot(servers, node_root, fake_do)
    fake_do.on_create = boot
    yield boot
    boot.cancel()  # before `servers` stops every sshd


@pytest.fixture
def run(tmp_path: Path, fake_do: FakeDigitalOcean, user_key: UserKey,
        ca: TestCA) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real create-node.py; returns the completed process (text output)."""
    home = tmp_path / "home"
    home.mkdir()

    def invoke(*args: str, env: dict[str, str | None] | None = None,
               state_dir: Path | None = None, ssh_key: Path | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # nothing reads or writes the real ~/.config or ~/.ssh
            "LANG": "C.UTF-8",
            "DIGITALOCEAN_TOKEN": TOKEN,
            "DIGITALOCEAN_API_URL": fake_do.url,
            "REQUESTS_CA_BUNDLE": str(ca.cert_path),
        }
        merged: dict[str, str | None] = {**environ, **(env or {})}
        argv = [sys.executable, str(CREATE_NODE), *args,
                "--state-dir", str(state_dir or tmp_path / "state"),
                "--ssh-key", str(ssh_key or user_key.path)]
        result = subprocess.run(
            argv, env={k: v for k, v in merged.items() if v is not None}, capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        # Whatever happened, the tokens never reach the terminal.
        assert TOKEN not in result.stdout + result.stderr
        assert DNS_TOKEN not in result.stdout + result.stderr
        return result

    return invoke


@pytest.fixture
def remote_dir(tmp_path: Path) -> Path:
    """Where the 'node' (this machine, through sshd) receives the checkout."""
    return tmp_path / "node" / "opt" / "workshop"


@pytest.fixture
def droplet_args(droplet_boot: DropletBoot, hub: HubHealth, remote_dir: Path,
                 node_root: Path) -> list[str]:
    """create-node.py arguments for the fake-DigitalOcean path with the fast setup step."""
    return ["--hostname", "lab", "--domain", DOMAIN, "--remote-dir", str(remote_dir),
            "--node-root", str(node_root),
            "--setup-only", "check", "--ssh-port", str(droplet_boot.port),
            "--health-port", str(hub.port), "--ssh-timeout", "30", "--health-timeout", "10"]
