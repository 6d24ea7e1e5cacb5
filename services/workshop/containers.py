"""Per-participant containers: each participant's JupyterLab in a Docker container of its own.

Selected by `WORKSHOP_SPAWNER=containers` (docker-compose.containers.yml sets it and gives
the hub the Docker socket). Compared with the default spawner (one process per
participant inside the hub's container) a container adds hard walls: a memory and CPU
limit per participant, so one runaway kernel is killed alone instead of taking the class
down, and no view of the hub's files at all.

Everything else stays as it is: the hub prepares account, 0700 home and materials exactly
like `WorkshopSpawner` (the `WorkshopHomes` mixin); the container runs the appliance's own
image as the participant's uid:gid, with only their home (read-write) and the participants'
Jupyter config (read-only: the save hook, JupyterLab defaults) mounted; the container shares
the host's network, so its server listens on a port of its own on 127.0.0.1 where the proxy,
the hub API and the dashboard are. Containers are removed when servers stop; homes stay.

The Docker daemon resolves bind-mount sources on the host, not in the hub's container, so
the spawner needs the host paths of the homes and of the Jupyter config. It reads them from
the hub container's own mounts (`docker inspect` of itself), unless `WORKSHOP_HOST_HOME` /
`WORKSHOP_HOST_JUPYTER_CONFIG` say otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from dockerspawner import DockerSpawner
from traitlets import Integer, Unicode, default

from .spawner import WorkshopHomes

MEM_LIMIT = "1G"  # a pandas exercise fits; 30 participants on a 32 GB node still leave room
CPU_LIMIT = 1.0  # a busy loop takes one core, never the whole node
IPYTHON_CONFIG = "/etc/ipython"  # the kernels' system-wide IPython config (execution feed)
_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")


def config_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """`c.WorkshopDockerSpawner` settings from the instructor's environment variables."""
    return {
        "image": env.get("WORKSHOP_IMAGE", "workshop-hub:latest"),
        "mem_limit": env.get("WORKSHOP_MEM_LIMIT", MEM_LIMIT),
        "cpu_limit": float(env.get("WORKSHOP_CPU_LIMIT", CPU_LIMIT)),
        "prefix": env.get("WORKSHOP_CONTAINER_PREFIX", "workshop"),
        "host_home_root": env.get("WORKSHOP_HOST_HOME", ""),
        "host_jupyter_config": env.get("WORKSHOP_HOST_JUPYTER_CONFIG", ""),
    }


def own_container_id(mountinfo: str) -> str | None:
    """The id of the container we run in, from /proc/self/mountinfo, or None.

    Docker bind-mounts /etc/hostname, /etc/hosts and /etc/resolv.conf from
    `<docker root>/containers/<id>/`, with host networking too, on cgroup v1 and v2 alike.
    """
    m = _CONTAINER_ID.search(mountinfo)
    return m.group(1) if m else None


def host_path(mounts: Iterable[Mapping[str, Any]], path: str) -> str | None:
    """Where `path` (inside our container) is on the host, given `docker inspect` Mounts.

    The bind mount with the longest destination containing `path` wins; None when `path`
    is not on a bind mount (then the daemon cannot see it at all).
    """
    target = PurePosixPath(path)
    best: tuple[int, str] | None = None
    for mount in mounts:
        if mount.get("Type") != "bind":
            continue
        dest = PurePosixPath(mount["Destination"])
        if target == dest or dest in target.parents:
            rest = target.relative_to(dest)
            source = str(PurePosixPath(mount["Source"]) / rest) if rest.parts else mount["Source"]
            if best is None or len(dest.parts) > best[0]:
                best = (len(dest.parts), source)
    return best[1] if best else None


class WorkshopDockerSpawner(WorkshopHomes, DockerSpawner):
    """A participant's JupyterLab in its own container (see the module doc)."""

    host_home_root = Unicode(
        "", help="Host path of `home_root`; empty: read from the hub container's mounts."
    ).tag(config=True)
    jupyter_config = Unicode(
        "/etc/jupyter", help="Participants' Jupyter config in the hub, mounted read-only."
    ).tag(config=True)
    host_jupyter_config = Unicode(
        "", help="Host path of `jupyter_config`; empty: read from the hub's mounts."
    ).tag(config=True)
    pids_limit = Integer(
        512, help="Processes and threads per participant's container (a fork bomb's wall)."
    ).tag(config=True)

    # The appliance's own image already holds JupyterLab, the kernel and the libraries:
    # building a second one would cost minutes and drift from what the tests run.
    @default("image")
    def _image(self) -> str:
        return "workshop-hub:latest"

    @default("pull_policy")
    def _pull_policy(self) -> str:
        return "never"  # built by `docker compose build`, never on a registry

    @default("cmd")
    def _cmd(self) -> list[str]:
        return ["jupyterhub-singleuser"]  # the image's own command is the hub

    @default("prefix")
    def _prefix(self) -> str:
        return "workshop"

    @default("network_name")
    def _network_name(self) -> str:
        # No bridges: the server shares the host's loopback with the hub and the proxy.
        return "host"

    @default("use_internal_ip")
    def _use_internal_ip(self) -> bool:
        # Not the bridge logic: publishing ports makes no sense on the host's network
        # (Docker ignores it); where the server listens is decided in start().
        return True

    @default("remove")
    def _remove(self) -> bool:
        return True  # a stopped server leaves nothing behind but its home

    @default("mem_limit")
    def _mem_limit(self) -> int:
        return 1024**3

    @default("cpu_limit")
    def _cpu_limit(self) -> float:
        return CPU_LIMIT

    async def _host_sources(self) -> tuple[str, str, str | None]:
        """Host paths of the homes' root, the Jupyter config and the kernels' IPython
        config (None when the hub has none: then kernels run without the execution feed)."""
        home, config = self.host_home_root, self.host_jupyter_config
        if home and config:
            return home, config, None
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            mountinfo = ""
        container = own_container_id(mountinfo)
        if container is None:
            if Path("/.dockerenv").exists():
                raise RuntimeError("cannot tell which container the hub runs in: set "
                                   "WORKSHOP_HOST_HOME and WORKSHOP_HOST_JUPYTER_CONFIG")
            # the hub on the host
            return home or self.home_root, config or self.jupyter_config, IPYTHON_CONFIG
        mounts = (await self.docker("inspect_container", container))["Mounts"]
        home = home or host_path(mounts, self.home_root) or ""
        config = config or host_path(mounts, self.jupyter_config) or ""
        if not (home and config):
            raise RuntimeError(f"{self.home_root} and {self.jupyter_config} must be bind "
                               "mounts of the hub's container (see docker-compose.yml)")
        return home, config, host_path(mounts, IPYTHON_CONFIG)

    async def start(self):  # type: ignore[override]
        account = await self.prepare_home()
        home_src, config_src, ipython_src = await self._host_sources()
        name, home = self.user.name, str(account.home)
        self.volumes = {
            f"{home_src.rstrip('/')}/{name}": home,
            config_src: {"bind": "/etc/jupyter", "mode": "ro"},
        }
        if ipython_src:  # every kernel reports its executions, as in the hub's container
            self.volumes[ipython_src] = {"bind": IPYTHON_CONFIG, "mode": "ro"}
        # The participant's own uid:gid, as on the host: files in the home stay theirs,
        # and the 0700 home keeps out everyone else, container or not.
        self.extra_create_kwargs = {**self._dict(self.extra_create_kwargs),
                                    "user": f"{account.uid}:{account.gid}",
                                    "working_dir": home}
        walls: dict[str, Any] = {
            # No capability, no setuid way back to one: a participant's process can never
            # bind the hub's ports (below 1024) on the shared network, nor change uid.
            "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
            # A fork bomb stays inside its own container.
            "pids_limit": self.pids_limit,
        }
        if self.mem_limit:
            # Swap as large as the limit again would double it: the limit is the limit.
            walls["memswap_limit"] = self.mem_limit
        self.extra_host_config = {**walls, **self._dict(self.extra_host_config)}
        # Host networking: every server needs a port of its own (start_in_turn gives it),
        # on loopback only.
        self.ip = "127.0.0.1"
        return await self.start_in_turn(super().start)

    async def get_ip_and_port(self) -> tuple[str, int]:
        return self.ip, self.port

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        # The image has no passwd entry for the participant: say who and where they are,
        # as LocalProcessSpawner does from passwd (pip --user, the terminal, expanduser).
        env.update(HOME=os.path.join(self.home_root, self.user.name),
                   USER=self.user.name, SHELL="/bin/bash")
        return env

    @staticmethod
    def _dict(value: Any) -> dict[str, Any]:
        if callable(value):  # a callable in config is kept out of our way, not called twice
            raise TypeError("WorkshopDockerSpawner sets user and memory itself: configure "
                            "extra_create_kwargs / extra_host_config as dicts")
        return dict(value or {})
