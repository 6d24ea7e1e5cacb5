"""Where create-node.py puts things on a droplet, and how it makes sshd take a new key.

--node-root (a testing option) moves every path below into a directory: the
end-to-end tests use this machine, through a real sshd, as the droplet, and must
not touch its own /etc/ssh or /root.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from provision.hostkeys import NODE_HOST_KEY

SSHD_PID = "/run/sshd.pid"  # Debian's and Ubuntu's PidFile
# certbot's dns-digitalocean plugin reads the token from here (setup-node.sh
# --dns-credentials); only root may read it.
DNS_CREDENTIALS = "/root/.config/workshop/digitalocean-dns.ini"


@dataclass(frozen=True)
class NodeFiles:
    root: str = ""  # testing: a directory standing in for the node's /

    def _at(self, path: str) -> str:
        return self.root.rstrip("/") + path

    @property
    def host_key(self) -> str:
        return self._at(NODE_HOST_KEY)

    @property
    def dns_credentials(self) -> str:
        return self._at(DNS_CREDENTIALS)

    def reload_sshd(self) -> str:
        """A shell command that makes the running sshd read its host keys again.

        SIGHUP makes sshd re-execute itself; connections already open are not
        touched. Under --node-root only that sshd's pid file is used: a test must
        never reload this machine's own sshd.
        """
        hup = f'kill -HUP "$(cat {shlex.quote(self._at(SSHD_PID))})"'
        if self.root:
            return hup
        return f"systemctl reload ssh || systemctl reload sshd || {hup}"
