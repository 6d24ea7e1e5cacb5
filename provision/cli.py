"""create-node.py's command line: the arguments, their types and the --help text.

Values are checked as they are parsed (ports, seconds), so every mistake is one
line and exit 2 before anything happens; provision/options.py checks how they
combine.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from provision.errors import ProvisionError
from provision.sizes import size_help, size_table

DEFAULT_API_URL = "https://api.digitalocean.com"
DEFAULT_IMAGE = "ubuntu-24-04-x64"  # current Ubuntu LTS
DEFAULT_REGION = "fra1"
DEFAULT_REMOTE_DIR = "/opt/workshop"
STATE_DIR_NAME = "workshop-appliance"
CONFIG_NAME = "config.toml"


EPILOG = """\
sizes:
{sizes}

tokens (environment):
  DIGITALOCEAN_TOKEN      read and write scope; create-node.py's own, never printed
  DIGITALOCEAN_DNS_TOKEN  recommended: a custom-scoped token with only domain:create,
                          domain:read, domain:update and domain:delete. The node keeps
                          it (/root/.config/workshop/digitalocean-dns.ini, 0600) for
                          certbot to renew the certificate for HOST and *.HOST; without
                          it the node gets DIGITALOCEAN_TOKEN instead.

what a droplet gets:
  A records HOST and *.HOST (participants' servers live on their own subdomains), a
  cloud firewall workshop-NAME (TCP 22, 80, 443 in; everything out), and this
  checkout with setup-node.sh run on it. Re-runs correct all of it; --destroy
  removes all of it.

host keys:
  A new droplet gets an SSH host key generated on this machine (handed over in
  cloud-init user data) and every connection must present exactly that key. User
  data stays readable on the droplet, so after the first login that key is
  replaced by a new one over the verified connection (its fingerprint is printed);
  an interrupted replacement is finished by the next run.
  With --ssh the first connection's key is trusted and pinned in the state
  directory (trust on first use: compare the printed fingerprint with the
  server's), and later connections must present the same key. Give
  --known-hosts FILE to require a key you already trust instead.

config file:
  Defaults for domain, region, size, image, ssh_key and email can be put in
  STATE_DIR/{config}, e.g.   domain = "example.org"
"""


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus an error and exits; create-node.py promises
    # one line on stderr and exit 2 for every error, so turn it into ours.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ProvisionError(f"{message} (see --help)")


def _port(value: str) -> int:
    # argparse's int would take 70000, which the socket layer wraps to 4464.
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def _seconds(value: str) -> float:
    # float() takes "nan" (no comparison is ever true: it would never time out) and "inf".
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="create-node.py",
        description=(
            "Create (or reuse) a DigitalOcean droplet for the workshop appliance, point\n"
            "HOSTNAME.DOMAIN and *.HOSTNAME.DOMAIN at it, put it behind a cloud firewall,\n"
            "upload this checkout and run setup-node.sh on it.\n"
            "Needs DIGITALOCEAN_TOKEN in the environment (a token with read and write scope)\n"
            "and preferably DIGITALOCEAN_DNS_TOKEN (see tokens below).\n"
            "Safe to re-run: the droplet (found by its name and the tag workshop-appliance),\n"
            "its DNS records and its firewall are reused and corrected. With --ssh an\n"
            "existing server is set up instead (no DigitalOcean, no subdomains)."
        ),
        epilog=EPILOG.format(sizes=size_table(), config=CONFIG_NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--hostname", required=True, help="name of the node, e.g. lab (becomes lab.DOMAIN)")
    add("--size", help=size_help())
    add("--name", help="droplet name (default: the hostname)")
    add("--domain", help="DNS domain managed on the DigitalOcean account "
        "(default: $DIGITALOCEAN_DOMAIN or domain in the config file)")
    add("--region", help=f"DigitalOcean region slug (default: {DEFAULT_REGION})")
    add("--image", help=f"droplet image slug (default: {DEFAULT_IMAGE})")
    add("--ssh-key", type=Path, metavar="PATH",
        help="your SSH private key; its public key (PATH.pub) must be on the DigitalOcean "
        "account (default: ~/.ssh/id_ed25519, id_ecdsa or id_rsa)")
    add("--email", help="e-mail address for Let's Encrypt (expiry notices)")
    add("--staging", action="store_true", help="use Let's Encrypt's staging CA (untrusted test "
        "certificates, generous rate limits)")
    add("--users", type=Path, metavar="FILE",
        help="upload FILE as etc/jupyterhub/users.txt (mode 0600) on the node")
    add("--dry-run", action="store_true", help="print the plan and change nothing "
        "(DigitalOcean is only read)")
    add("--force", action="store_true", help="create the droplet even when --size holds "
        "fewer people than --users lists (see provision/capacity.py)")
    add("--destroy", action="store_true", help="delete the droplet, its DNS A records (HOST, "
        "*.HOST) and its cloud firewall")
    add("--yes", action="store_true", help="do not ask before --destroy")
    add("--ssh", metavar="USER@HOST[:PORT]",
        help="set up a server you already have instead of a droplet (USER must be root); "
        "DigitalOcean is not used and --hostname is the full name the server answers to")
    add("--known-hosts", type=Path, metavar="FILE",
        help="with --ssh: take the server's host key from this known_hosts file instead of "
        "trusting it on first use")
    add("--state-dir", type=Path, metavar="DIR",
        help=f"where pinned host keys and {CONFIG_NAME} live "
        f"(default: ~/.config/{STATE_DIR_NAME})")
    add("--api-url", metavar="URL", help="DigitalOcean API base URL (default: "
        f"$DIGITALOCEAN_API_URL or {DEFAULT_API_URL})")
    add("--ssh-timeout", type=_seconds, default=600.0, metavar="SECONDS",
        help="how long to wait for SSH on a new droplet (default: 600)")
    add("--health-timeout", type=_seconds, default=300.0, metavar="SECONDS",
        help="how long to wait for /hub/health after setup (default: 300)")
    add("--api-timeout", type=_seconds, default=120.0, metavar="SECONDS",
        help="how long to keep retrying a DigitalOcean API call answered 429/5xx, waits it "
        "asks for (Retry-After) included (default: 120)")

    testing = parser.add_argument_group(
        "testing and local try-outs", "not needed for a real workshop")
    testing.add_argument("--acme-server", metavar="URL",
        help="ACME directory URL for certbot, e.g. a local pebble (passed to setup-node.sh)")
    testing.add_argument("--no-tls", action="store_true",
        help="no certificate: serve plain http (passed to setup-node.sh)")
    testing.add_argument("--remote-dir", default=DEFAULT_REMOTE_DIR, metavar="DIR",
        help=f"where the checkout goes on the node (default: {DEFAULT_REMOTE_DIR})")
    testing.add_argument("--setup-only", metavar="STEP[,STEP]",
        help="run only these setup-node.sh steps (passed as --only)")
    testing.add_argument("--ssh-port", type=_port, default=22, metavar="PORT",
        help="SSH port of a droplet (default: 22)")
    testing.add_argument("--health-port", type=_port, metavar="PORT",
        help="port nginx answers on for the final health check (default: 443, 80 with "
        "--no-tls)")
    testing.add_argument("--node-root", metavar="DIR",
        help="on a droplet, keep the SSH host key, sshd's pid file and the DNS credentials "
        "under DIR instead of / (the tests use this machine as the droplet)")
    return parser
