"""WorkshopDockerSpawner: host paths, the container it asks Docker for, who may enter.

Docker itself is not needed here: the e2e package tests/e2e/containers runs the real thing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dockerspawner import DockerSpawner

from workshop.accounts import SystemUser
from workshop.containers import (
    WorkshopDockerSpawner,
    config_from_env,
    host_path,
    own_container_id,
)
from workshop.spawner import WorkshopHomes, WorkshopSpawner

CID = "ad8155fda45efd0a7c3cefcd1e601e630d4eecf105c82e4e30b307543aec5ea9"
MOUNTINFO = f"""\
107 95 0:44 / / rw,relatime - vfs vfs rw
124 107 254:0 /work/main/etc/jupyter /etc/jupyter ro,relatime - ext4 /dev/vda rw
125 107 254:0 /var/lib/docker/containers/{CID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw
126 107 254:0 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw - ext4 /dev/vda rw
"""
MOUNTS = [
    {"Type": "bind", "Source": "/srv/class/home", "Destination": "/home"},
    {"Type": "bind", "Source": "/srv/class/etc/jupyter", "Destination": "/etc/jupyter"},
    {"Type": "bind", "Source": "/srv/class/etc/ipython", "Destination": "/etc/ipython"},
    {"Type": "bind", "Source": "/elsewhere/alice", "Destination": "/home/alice/shared"},
    {"Type": "volume", "Source": "/var/lib/docker/volumes/x/_data", "Destination": "/srv"},
]


def user(name: str = "alice", groups: tuple[str, ...] = ("participants",)) -> Any:
    return SimpleNamespace(name=name, groups=[SimpleNamespace(name=g) for g in groups],
                           url=f"/user/{name}/")


def test_own_container_id_from_mountinfo():
    assert own_container_id(MOUNTINFO) == CID
    assert own_container_id("107 95 0:44 / / rw - ext4 /dev/vda rw\n") is None


def test_host_path_of_bind_mounts_longest_first():
    assert host_path(MOUNTS, "/home") == "/srv/class/home"
    assert host_path(MOUNTS, "/home/bob") == "/srv/class/home/bob"
    assert host_path(MOUNTS, "/home/alice/shared/x") == "/elsewhere/alice/x"
    assert host_path(MOUNTS, "/etc/jupyter") == "/srv/class/etc/jupyter"
    assert host_path(MOUNTS, "/homes") is None  # a prefix of the name is not a parent
    assert host_path(MOUNTS, "/srv/hub") is None  # named volumes are no host path


def test_config_from_env_defaults_and_overrides():
    assert config_from_env({}) == {
        "image": "workshop-hub:latest", "mem_limit": "1G", "cpu_limit": 1.0,
        "prefix": "workshop", "host_home_root": "", "host_jupyter_config": ""}
    got = config_from_env({"WORKSHOP_MEM_LIMIT": "2G", "WORKSHOP_CPU_LIMIT": "0.5",
                           "WORKSHOP_HOST_HOME": "/opt/workshop/home"})
    assert (got["mem_limit"], got["cpu_limit"], got["host_home_root"]) == (
        "2G", 0.5, "/opt/workshop/home")


def test_both_spawners_share_the_preparation_not_a_copy():
    assert issubclass(WorkshopSpawner, WorkshopHomes)
    assert issubclass(WorkshopDockerSpawner, WorkshopHomes)
    assert issubclass(WorkshopDockerSpawner, DockerSpawner)
    assert "start" not in WorkshopHomes.__dict__  # each spawner starts its own way


def test_defaults_fit_the_appliance():
    s = WorkshopDockerSpawner(user=user())
    assert (s.image, s.pull_policy, s.network_name, s.remove) == (
        "workshop-hub:latest", "never", "host", True)
    assert s.cmd == ["jupyterhub-singleuser"]
    assert s.mem_limit == 1024**3 and s.cpu_limit == 1.0
    assert s.object_name == "workshop-alice"


def test_participants_servers_accept_the_participants_group_scope():
    participant = WorkshopDockerSpawner(user=user("alice")).workshop_access_scopes()
    assert "access:servers!group=participants" in participant
    assert "access:servers!server=alice/" in participant
    teacher = WorkshopDockerSpawner(user=user("teacher", ("instructors",)))
    assert teacher.workshop_access_scopes() == [
        "access:servers!server=teacher/", "access:servers!user=teacher"]


def test_users_txt_counts_before_users_sync_puts_them_in_the_group(tmp_path: Path):
    users = tmp_path / "users.txt"
    users.write_text("alice:pw\n[instructors]\nteacher:pw\n")
    authenticator = SimpleNamespace(users_file=str(users))
    alice = WorkshopDockerSpawner(user=user("alice", ()), authenticator=authenticator)
    assert "access:servers!group=participants" in alice.workshop_access_scopes()
    teacher = WorkshopDockerSpawner(user=user("teacher", ()), authenticator=authenticator)
    assert "access:servers!group=participants" not in teacher.workshop_access_scopes()
    users.unlink()  # unreadable users.txt: only the hub's group counts
    assert "access:servers!group=participants" not in alice.workshop_access_scopes()


def test_start_asks_for_the_participants_container(monkeypatch):
    s = WorkshopDockerSpawner(user=user(), mem_limit="256M", cpu_limit=0.5)
    account = SystemUser("alice", 2001, 2001, Path("/home/alice"), created=False)
    seen: dict[str, Any] = {}

    async def prepare_home(self: WorkshopDockerSpawner) -> SystemUser:
        self.oauth_access_scopes = self.workshop_access_scopes()
        return account

    async def host_sources(self: WorkshopDockerSpawner) -> tuple[str, str, str | None]:
        return "/srv/class/home/", "/srv/class/etc/jupyter", "/srv/class/etc/ipython"

    async def docker_start(self: DockerSpawner) -> tuple[str, int]:
        seen.update(volumes=self.volumes, create=self.extra_create_kwargs,
                    host=self.extra_host_config, ip=self.ip, port=self.port)
        return await self.get_ip_and_port()

    monkeypatch.setattr(WorkshopDockerSpawner, "prepare_home", prepare_home)
    monkeypatch.setattr(WorkshopDockerSpawner, "_host_sources", host_sources)
    monkeypatch.setattr(DockerSpawner, "start", docker_start)
    ip, port = asyncio.run(s.start())
    assert (ip, port) == ("127.0.0.1", seen["port"]) and 1024 < port < 65536
    assert seen["volumes"] == {
        "/srv/class/home/alice": "/home/alice",
        "/srv/class/etc/jupyter": {"bind": "/etc/jupyter", "mode": "ro"},
        # the kernels' IPython config: the execution feed in every container too
        "/srv/class/etc/ipython": {"bind": "/etc/ipython", "mode": "ro"}}
    assert seen["create"] == {"user": "2001:2001", "working_dir": "/home/alice"}
    assert seen["host"] == {"memswap_limit": 256 * 1024**2,  # no swap on top of the limit
                            # walls: no capability (no port below 1024), no setuid, no
                            # fork bomb beyond the container
                            "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
                            "pids_limit": 512}


def test_host_sources_from_settings_or_refused(monkeypatch):
    s = WorkshopDockerSpawner(user=user(), host_home_root="/a/home",
                              host_jupyter_config="/a/etc/jupyter")
    assert asyncio.run(s._host_sources()) == ("/a/home", "/a/etc/jupyter", None)

    inspected = WorkshopDockerSpawner(user=user())
    calls: list[tuple[str, str]] = []

    async def fake_docker(method: str, *args: Any) -> Any:
        calls.append((method, *args))
        return {"Mounts": MOUNTS}

    monkeypatch.setattr(inspected, "docker", fake_docker)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: MOUNTINFO)
    assert asyncio.run(inspected._host_sources()) == (
        "/srv/class/home", "/srv/class/etc/jupyter", "/srv/class/etc/ipython")
    assert calls == [("inspect_container", CID)]

    monkeypatch.setattr(inspected, "docker", lambda *a: _async({"Mounts": MOUNTS[4:]}))
    with pytest.raises(RuntimeError, match="bind"):
        asyncio.run(inspected._host_sources())


async def _async(value: Any) -> Any:
    return value
