#!/usr/bin/env python3
"""Rehearse a class against a live node before it starts: `python rehearse.py --ssh
root@lab.example.org --participants 60`.

N throw-away participants (`rehearsal-<tag>-NNN`) are added through users.txt's safe
path, log in at the same moment, start their servers as the Start button does, run their
first cell all at once, work a little (pandas, a plot, a save) and are removed again,
accounts, processes and homes. Nobody else's account, server or file is touched. It
prints the figures a class feels and whether the node holds the class, with the size
that would; exit 0 when it holds, 1 when it does not, 2 when the rehearsal could not run.

The node is the one create-node.py set up: --ssh USER@HOST[:PORT] connects with the host
key pinned then (in --state-dir); the hub's container is `workshop-hub-1`. For a stack on
this machine, --container NAME runs `docker exec` here. Needs
`pip install -r provision/requirements.txt` and, on the laptop, the repository checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT / "services")]

PROG = "rehearse"

try:
    from provision.errors import ProvisionError
    from provision.rehearsal import RehearsalError, docker_exec, format_report, rehearse
    from workshop.addresses import Addresses
except ImportError as exc:  # the one error that cannot use our own reporting
    print(f"{PROG}: error: {exc.name or exc} is not installed: "
          "pip install -r provision/requirements.txt", file=sys.stderr)
    sys.exit(2)

DEFAULT_CONTAINER = "workshop-hub-1"  # docker-compose.yml's project "workshop"


def parse(argv: list[str] | None) -> argparse.Namespace:
    summary = " ".join(__doc__.split("\n\n")[0].split())
    parser = argparse.ArgumentParser(prog=PROG, description=summary)
    parser.add_argument("--participants", "-n", type=int, required=True,
                        help="how many throw-away participants (the class's size)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ssh", metavar="USER@HOST[:PORT]",
                       help="the node, set up by create-node.py (its host key is pinned)")
    where.add_argument("--local", action="store_true",
                       help="the stack runs on this machine (docker exec here)")
    parser.add_argument("--url", help="where browsers reach the hub (default "
                        "https://HOST for --ssh)")
    parser.add_argument("--container", default=DEFAULT_CONTAINER,
                        help=f"the hub's container (default {DEFAULT_CONTAINER})")
    parser.add_argument("--ssh-key", type=Path, default=Path.home() / ".ssh" / "id_ed25519")
    parser.add_argument("--state-dir", type=Path,
                        default=Path.home() / ".config" / "workshop-appliance",
                        help="where create-node.py pinned the node's host key")
    parser.add_argument("--subdomains", choices=("yes", "no"), default="yes",
                        help="whether participants have addresses of their own "
                        "(WORKSHOP_SUBDOMAINS on the node; default yes)")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.participants <= 500:
        parser.error("--participants: between 1 and 500")
    if args.local and not args.url:
        parser.error("--local needs --url (e.g. http://lab.localhost:880)")
    return args


def _ssh_client(args: argparse.Namespace):  # -> paramiko.SSHClient
    """A connection to the node that accepts only the host key create-node.py pinned."""
    from provision.backoff import Backoff
    from provision.hostkeys import HostKeyStore
    from provision.options import parse_target
    from provision.progress import Progress
    from provision.ssh import Route, connect
    from provision.userkey import load_private_key, read_user_key

    target = parse_target(args.ssh)
    pinned = HostKeyStore(args.state_dir).pinned_server_keys()
    key = load_private_key(read_user_key(args.ssh_key))
    route = Route(target.host, target.port, target.user, key, pinned, None,
                  Backoff(first=0.5, factor=1.5, maximum=5.0, timeout=30.0),
                  mismatch_hint="the node's host key is not the one create-node.py pinned")
    return connect(route, Progress(sys.stderr))  # stdout is the report (--json)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    ssh = None
    try:
        if args.ssh:
            ssh = _ssh_client(args)
            host = args.ssh.split("@", 1)[1].split(":")[0].strip("[]")
            url = args.url or f"https://{host}"
        else:
            url = args.url
        addresses = Addresses(public_url=url.rstrip("/"), subdomains=args.subdomains == "yes")
        say = (lambda _: None) if args.json else (lambda line: print(line, flush=True))
        report = rehearse(docker_exec(args.container, ssh), addresses, args.participants,
                          say=say)
    except (RehearsalError, ProvisionError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    finally:
        if ssh is not None:
            ssh.close()
    print(json.dumps(report.as_dict(), indent=1) if args.json else format_report(report))
    return 0 if report.holds else 1


if __name__ == "__main__":
    sys.exit(main())
