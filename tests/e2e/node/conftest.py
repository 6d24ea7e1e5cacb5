"""setup-node.sh for real on this machine: nginx, certbot against pebble, the stack.

The project runs from a copy of the checkout (tmp/e2e-node/workshop) as a second
appliance beside whatever already runs here (the README's first command, say): its own
compose project (which also names its nginx site), its own loopback ports (940-943), nginx
on its own ports (8180/8543), its own firewall chain, a hostname made for the run
(lab-<random>.test, /etc/hosts points it at 127.0.0.1) and a wildcard certificate from
pebble through DNS-01 (pebble-challtestsrv). Teardown stops what the run started, by
PID, and removes what it added to the system (hosts line, nginx site and snippets,
nginx.conf edits, certificate, firewall chain), so an appliance that was running is left
exactly as it was.
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

from tests.e2e.compose_stack import ROOT, copy_checkout, port_holder
from tests.e2e.node.acme import (
    ACME_PORT,
    DNS_MANAGEMENT_PORT,
    DNS_PORT,
    MANAGEMENT_PORT,
    Pebble,
)
from tests.e2e.system_files import pid_of, restore, snapshot
from workshop.addresses import Addresses

PROJECT = "workshop-node-e2e"
HUB_PORT, HTTP_PORT, HTTPS_PORT = 940, 8180, 8543
FIREWALL_CHAIN = "WSNODE"  # not the appliance's WORKSHOP chains
HOSTS = Path("/etc/hosts")
NGINX = Path("/etc/nginx")
# What setup-node.sh writes for this site (besides the certificate).
NGINX_FILES = [NGINX / f"sites-enabled/{PROJECT}.conf", NGINX / f"sites-available/{PROJECT}.conf",
               NGINX / f"snippets/{PROJECT}-proxy.conf", NGINX / f"snippets/{PROJECT}-tls.conf"]
# Shared with any other appliance here: put back exactly as they were.
SHARED = [NGINX / "conf.d/workshop-http.conf", NGINX / "nginx.conf",
          Path("/etc/letsencrypt/renewal-hooks/deploy/workshop-reload-nginx")]
# certbot's account at this run's pebble: pebble forgets accounts when it stops.
PEBBLE_ACCOUNTS = Path(f"/etc/letsencrypt/accounts/127.0.0.1:{ACME_PORT}")


@dataclass
class Node:
    host: str
    project_dir: Path
    pebble: Pebble

    @property
    def addresses(self) -> Addresses:
        return Addresses(port=HUB_PORT, public_url=f"https://{self.host}:{HTTPS_PORT}")

    def setup(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COMPOSE_PROJECT_NAME": PROJECT, "WORKSHOP_FW_CHAIN": FIREWALL_CHAIN,
               "REQUESTS_CA_BUNDLE": str(self.pebble.ca)}
        return subprocess.run(
            ["bash", str(self.project_dir / "setup-node.sh"), self.host,
             "--acme-server", self.pebble.directory_url, "--email", "instructor@example.org",
             "--dns-hook", str(self.pebble.dns_hook()), *args],
            capture_output=True, text=True, env=env, timeout=timeout, check=False)

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "compose", "-p", PROJECT, *args], cwd=self.project_dir,
                              capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="package")
def node() -> Iterator[Node]:
    needed = (HUB_PORT, HUB_PORT + 1, HUB_PORT + 2, HUB_PORT + 3, HTTP_PORT, HTTPS_PORT,
              ACME_PORT, MANAGEMENT_PORT, DNS_PORT, DNS_MANAGEMENT_PORT)
    busy = {p: who for p in needed if (who := port_holder(p))}
    if busy:
        pytest.fail("ports the node test needs are taken: "
                    + "; ".join(f"127.0.0.1:{p} by {w}" for p, w in busy.items()))
    work = ROOT / "tmp" / "e2e-node"
    shutil.rmtree(work, ignore_errors=True)
    (work / "acme").mkdir(parents=True)
    project_dir = work / "workshop"
    copy_checkout(project_dir)
    (project_dir / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={PROJECT}\nWORKSHOP_PORT={HUB_PORT}\n"
        f"WORKSHOP_HTTP_PORT={HTTP_PORT}\nWORKSHOP_HTTPS_PORT={HTTPS_PORT}\n"
        # The participants' walls, not the inbound firewall: this machine is not a node.
        "WORKSHOP_FIREWALL=outbound\n")
    host = f"lab-{secrets.token_hex(4)}.test"
    # The hub, the dashboard and the one participant the tests use (a real node has a
    # wildcard DNS record instead).
    hosts_line = f"127.0.0.1 {host} alice.{host} dashboard--service.{host}  # workshop e2e\n"
    HOSTS.write_text(HOSTS.read_text() + hosts_line)
    nginx_before = pid_of("/run/nginx.pid")
    cron_before = pid_of("/run/crond.pid")
    shared = snapshot(SHARED)
    shutil.rmtree(PEBBLE_ACCOUNTS, ignore_errors=True)
    pebble = Pebble(work / "acme", http_port=HTTP_PORT)
    pebble.start()
    node = Node(host, project_dir, pebble)
    try:
        yield node
    finally:
        (work / "hub.log").write_text(node.compose("logs", "--no-color").stdout)
        node.compose("down", "--volumes", "--timeout", "20")
        pebble.stop()
        for path in NGINX_FILES:
            path.unlink(missing_ok=True)
        restore(shared)
        nginx_now = pid_of("/run/nginx.pid")
        if nginx_before is None and nginx_now:  # started for this run: stop it
            os.kill(nginx_now, signal.SIGTERM)
        elif nginx_now:  # somebody's nginx: back to exactly its own sites
            subprocess.run(["nginx", "-s", "reload"], capture_output=True, check=False)
        if not cron_before and (cron := pid_of("/run/crond.pid")):
            os.kill(cron, signal.SIGTERM)
        subprocess.run(["certbot", "delete", "--non-interactive", "--cert-name", host],
                       capture_output=True, check=False)
        subprocess.run(["bash", str(ROOT / "etc/firewall/workshop-firewall.sh"), "remove"],
                       env={**os.environ, "WORKSHOP_FW_CHAIN": FIREWALL_CHAIN},
                       capture_output=True, check=False)
        shutil.rmtree(PEBBLE_ACCOUNTS, ignore_errors=True)
        HOSTS.write_text(HOSTS.read_text().replace(hosts_line, ""))
