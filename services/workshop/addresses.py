"""Where everything of one appliance listens and is reached: the one place that knows.

Inside the node, on loopback, four consecutive ports starting at `WORKSHOP_PORT` (880):

    port      the proxy's public side (nginx forwards here)
    port + 1  the proxy's REST API
    port + 2  the hub (its REST API, the login)
    port + 3  the dashboard

All four are below 1024 by default, so only root may bind them: a participant's process
(any uid from 2000 up) that tries to take one over, say while the dashboard restarts,
gets EACCES instead of everybody's save-hook tokens. A second appliance on the same
machine (the test suite's) takes another base.

Outside, the appliance answers at `WORKSHOP_PUBLIC_URL` (`http://localhost` when tried out
locally). With subdomains (the default; JupyterHub's `subdomain_host`), every participant's
server has an origin of its own (`alice.lab.example.org`) and so has the dashboard
(`dashboard--service.lab.example.org`): nothing a participant serves ever runs on the
hub's or the dashboard's origin. JupyterHub names the hosts (`subdomain_hook_idna`);
this module asks the same function, so the names agree by construction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 880
DEFAULT_PUBLIC_URL = "http://localhost"
LOOPBACK = "127.0.0.1"


def _flag(value: str) -> bool:
    if value.lower() in ("yes", "true", "1", "on"):
        return True
    if value.lower() in ("no", "false", "0", "off"):
        return False
    raise ValueError(f"WORKSHOP_SUBDOMAINS={value!r}: use yes or no")


@dataclass(frozen=True)
class Addresses:
    port: int = DEFAULT_PORT
    public_url: str = DEFAULT_PUBLIC_URL
    subdomains: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65532:
            raise ValueError(f"WORKSHOP_PORT={self.port}: needs four ports from there")
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise ValueError(f"WORKSHOP_PUBLIC_URL={self.public_url!r}: expected "
                             "http(s)://host[:port], without a path")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Addresses:
        env = os.environ if env is None else env
        return cls(port=int(env.get("WORKSHOP_PORT", DEFAULT_PORT)),
                   public_url=env.get("WORKSHOP_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/"),
                   subdomains=_flag(env.get("WORKSHOP_SUBDOMAINS", "yes")))

    # -- inside: loopback ----------------------------------------------------------------
    @property
    def proxy_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def proxy_api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port + 1}"

    @property
    def hub_port(self) -> int:
        return self.port + 2

    @property
    def dashboard_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port + 3}"

    def internal_ports(self) -> dict[int, str]:
        return {self.port: "the proxy", self.port + 1: "the proxy's API",
                self.port + 2: "the hub", self.port + 3: "the dashboard"}

    # -- outside: what browsers use --------------------------------------------------------
    @property
    def hostname(self) -> str:
        return urlsplit(self.public_url).hostname or ""

    def _origin(self, host: str) -> str:
        parts = urlsplit(self.public_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"

    def user_host(self, name: str) -> str:
        """The host name a participant's server is served on."""
        if not self.subdomains:
            return self.hostname
        from jupyterhub.utils import subdomain_hook_idna  # the hub's own naming

        return subdomain_hook_idna(name, self.hostname, "user")

    def service_host(self, name: str) -> str:
        if not self.subdomains:
            return self.hostname
        from jupyterhub.utils import subdomain_hook_idna

        return subdomain_hook_idna(name, self.hostname, "service")

    def hub(self, path: str = "/hub/") -> str:
        return self.public_url + path

    def user(self, name: str, path: str = "") -> str:
        """Public URL of `name`'s server (path below /user/<name>/)."""
        return f"{self._origin(self.user_host(name))}/user/{name}/{path.lstrip('/')}"

    def service(self, name: str, path: str = "") -> str:
        return f"{self._origin(self.service_host(name))}/services/{name}/{path.lstrip('/')}"
