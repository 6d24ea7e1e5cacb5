"""Command-line options of create-node.py, validated into one Options value.

Parsing lives here (the parser and --help in provision/cli.py) rather than in
create-node.py so unit tests can import it and so the script stays a short,
readable sequence of steps.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.cli import (
    CONFIG_NAME,
    DEFAULT_API_URL,
    DEFAULT_IMAGE,
    DEFAULT_REGION,
    STATE_DIR_NAME,
    build_parser,
)
from provision.errors import ProvisionError
from provision.nodefiles import NodeFiles
from provision.sizes import DEFAULT_SIZE, UnknownSize, resolve_size

CONFIG_KEYS = frozenset({"domain", "region", "size", "image", "ssh_key", "email"})

MAX_NAME = 253  # characters in a DNS name (RFC 1035, without the final dot)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_STEPS = re.compile(r"^[a-z0-9_-]+(?:,[a-z0-9_-]+)*$")
# USER@HOST[:PORT]; an IPv6 address goes in brackets: root@[2001:db8::1]:22
_TARGET = re.compile(
    r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@\s\[\]]+)(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        port = "" if self.port == 22 else f":{self.port}"
        return f"{self.user}@{self.host}{port}"


@dataclass(frozen=True)
class Options:
    mode: str  # "create", "destroy" or "ssh"
    hostname: str  # relative to the domain for DigitalOcean, full name with --ssh
    fqdn: str
    name: str
    domain: str | None
    size: str
    region: str
    image: str
    ssh_key: Path
    email: str | None
    staging: bool
    users: Path | None
    dry_run: bool
    yes: bool
    target: SshTarget | None
    known_hosts: Path | None
    state_dir: Path
    api_url: str
    acme_server: str | None
    tls: bool
    remote_dir: str
    setup_only: str | None
    ssh_port: int
    health_port: int | None
    ssh_timeout: float
    health_timeout: float
    api_timeout: float
    force: bool = False  # create a droplet too small for --users anyway
    node_root: str = ""  # testing: the droplet's paths live under this directory

    @property
    def node(self) -> NodeFiles:
        return NodeFiles(self.node_root)

    @property
    def firewall(self) -> str:
        return f"workshop-{self.name}"


def default_state_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / STATE_DIR_NAME


def default_ssh_key() -> Path:
    ssh = Path.home() / ".ssh"
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        if (ssh / name).exists():
            return ssh / name
    return ssh / "id_ed25519"


def parse_target(value: str) -> SshTarget:
    match = _TARGET.match(value.strip())
    if not match:
        raise ProvisionError(f"--ssh {value!r} is not USER@HOST or USER@HOST:PORT")
    port = int(match["port"] or 22)
    if not 0 < port < 65536:
        raise ProvisionError(f"--ssh port {port} is out of range")
    host = match["host"].strip("[]")
    if match["user"] != "root":
        raise ProvisionError(
            f"--ssh {value}: log in as root (setup-node.sh installs packages and "
            "writes /etc); root@HOST with your key in /root/.ssh/authorized_keys"
        )
    return SshTarget(match["user"], host, port)


def load_config(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"cannot read {path}: {exc}") from None
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise ProvisionError(
            f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(CONFIG_KEYS))})"
        )
    bad = [key for key, value in data.items() if not isinstance(value, str)]
    if bad:
        raise ProvisionError(f"{path}: {bad[0]} must be a string in quotes")
    return dict(data)


def _hostname(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if not _HOSTNAME.match(host) or len(host) > MAX_NAME:
        raise ProvisionError(f"--hostname {value!r} is not a valid DNS name")
    return host


def _split_host(host: str, domain: str) -> tuple[str, str]:
    """Return (record name relative to the domain, fully qualified name)."""
    if host == domain:
        raise ProvisionError(
            f"--hostname {host} is the domain itself: give a name below it, e.g. lab"
        )
    suffix = "." + domain
    relative = host[: -len(suffix)] if host.endswith(suffix) else host
    return relative, f"{relative}.{domain}"


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str]) -> Options:
    args = build_parser().parse_args(argv)
    state_dir = (args.state_dir or default_state_dir(env)).expanduser()
    config = load_config(state_dir / CONFIG_NAME)
    host = _hostname(args.hostname)

    if args.ssh and args.destroy:
        raise ProvisionError("--destroy removes a droplet; it cannot be used with --ssh")
    if args.ssh:
        for flag in ("size", "name", "region", "image"):
            if getattr(args, flag) is not None:
                raise ProvisionError(f"--{flag} is for droplets; it is not used with --ssh")
    if args.known_hosts and not args.ssh:
        raise ProvisionError("--known-hosts is for --ssh; droplets get a generated host key")
    if args.no_tls and (args.email or args.staging or args.acme_server):
        raise ProvisionError("--no-tls cannot be combined with --email, --staging or "
                             "--acme-server")
    if args.acme_server and not re.match(r"^https?://", args.acme_server):
        raise ProvisionError(f"--acme-server {args.acme_server!r} is not an http(s) URL")
    if args.setup_only and not _STEPS.match(args.setup_only):
        raise ProvisionError(f"--setup-only {args.setup_only!r} is not STEP[,STEP...]")
    if args.node_root is not None and not args.node_root.startswith("/"):
        raise ProvisionError(f"--node-root {args.node_root!r} must be an absolute directory")
    if not args.remote_dir.startswith("/") or args.remote_dir.rstrip("/") == "":
        raise ProvisionError(f"--remote-dir {args.remote_dir!r} must be an absolute "
                             "directory other than /")
    api_url = (args.api_url or env.get("DIGITALOCEAN_API_URL") or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith("https://"):
        # pydo refuses to send the token over plain http, and rightly so.
        raise ProvisionError(f"the DigitalOcean API URL must start with https:// ({api_url})")
    if args.users is not None and not args.users.is_file():
        raise ProvisionError(f"--users {args.users}: no such file")
    try:
        size = resolve_size(args.size or config.get("size") or DEFAULT_SIZE)
    except UnknownSize as exc:
        raise ProvisionError(str(exc)) from None

    target = parse_target(args.ssh) if args.ssh else None
    if target:
        # The instructor manages DNS for their own server: the hostname is the
        # full name, a domain is appended only when given explicitly.
        domain = args.domain.strip().lower().rstrip(".") if args.domain else None
        relative, fqdn = _split_host(host, domain) if domain else (host, host)
        mode = "ssh"
    else:
        domain_value = args.domain or env.get("DIGITALOCEAN_DOMAIN") or config.get("domain")
        if not domain_value:
            raise ProvisionError(
                "no domain: give --domain, set DIGITALOCEAN_DOMAIN or put domain = "
                f"\"example.org\" in {state_dir / CONFIG_NAME}"
            )
        domain = domain_value.strip().lower().rstrip(".")
        if not _HOSTNAME.match(domain) or "." not in domain:
            raise ProvisionError(f"domain {domain_value!r} is not a valid DNS domain")
        relative, fqdn = _split_host(host, domain)
        mode = "destroy" if args.destroy else "create"
    if len(fqdn) > MAX_NAME:
        raise ProvisionError(f"{fqdn[:40]}... is {len(fqdn)} characters long: a DNS name "
                             f"has at most {MAX_NAME}")

    ssh_key = Path(args.ssh_key or config.get("ssh_key") or default_ssh_key()).expanduser()
    return Options(
        mode=mode,
        hostname=relative,
        fqdn=fqdn,
        name=args.name or relative,
        domain=domain,
        size=size,
        region=args.region or config.get("region") or DEFAULT_REGION,
        image=args.image or config.get("image") or DEFAULT_IMAGE,
        ssh_key=ssh_key,
        email=args.email or (None if args.no_tls else config.get("email")),
        staging=args.staging,
        users=args.users,
        dry_run=args.dry_run,
        yes=args.yes,
        target=target,
        known_hosts=args.known_hosts,
        state_dir=state_dir,
        api_url=api_url,
        acme_server=args.acme_server,
        tls=not args.no_tls,
        remote_dir=args.remote_dir.rstrip("/"),
        setup_only=args.setup_only,
        ssh_port=args.ssh_port,
        health_port=args.health_port,
        ssh_timeout=args.ssh_timeout,
        health_timeout=args.health_timeout,
        api_timeout=args.api_timeout,
        force=args.force,
        node_root=args.node_root or "",
    )


def setup_command(opts: Options) -> list[str]:
    """The setup-node.sh command line run on the node, as a list of words."""
    words = ["bash", f"{opts.remote_dir}/setup-node.sh", opts.fqdn]
    if opts.email:
        words += ["--email", opts.email]
    if opts.staging:
        words.append("--staging")
    if opts.acme_server:
        words += ["--acme-server", opts.acme_server]
    if not opts.tls:
        words.append("--no-tls")
    if opts.setup_only:
        words += ["--only", opts.setup_only]
    if opts.mode != "ssh":
        # A droplet gets a token for DNS-01 (a certificate for *.HOST too); a server given
        # with --ssh gets none and runs without participants' subdomains.
        words += ["--dns-credentials", opts.node.dns_credentials]
    return words
