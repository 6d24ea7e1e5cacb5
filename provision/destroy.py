"""create-node.py --destroy: the droplet, its DNS records, its firewall and its pinned key.

Nothing is deleted, and nothing claims to be, before it is confirmed (--yes, or the
droplet's name typed in a terminal).
"""

from __future__ import annotations

import sys

from provision.digitalocean import TAG, DigitalOcean
from provision.dns import Dns, node_names
from provision.errors import ProvisionError
from provision.firewall import Firewalls
from provision.hostkeys import HostKeyStore
from provision.options import Options
from provision.progress import Progress


def confirm_destroy(opts: Options, targets: list[str], progress: Progress) -> None:
    """Ask before deleting; without a terminal, refuse (and say nothing else) unless --yes."""
    if opts.yes:
        return
    if not sys.stdin.isatty():
        raise ProvisionError("--destroy asks for confirmation: add --yes when not "
                             "running in a terminal")
    for target in targets:
        progress.say(f"will delete {target}")
    answer = input(f"Type the droplet name ({opts.name}) to destroy it: ").strip()
    if answer != opts.name:
        raise ProvisionError("not confirmed: nothing was destroyed")


def run_destroy(opts: Options, do: DigitalOcean, dns: Dns, firewalls: Firewalls,
                progress: Progress) -> int:
    names = node_names(opts.hostname)
    droplets = do.find_droplets(opts.name)
    # The firewall is ours by its name, so it goes even when its droplet is gone already.
    walls = firewalls.find(opts.firewall)
    if not droplets and not walls:
        left = [f"{dns.fqdn(name)} → {r.data}"
                for name, records in dns.a_records(names).items() for r in records]
        note = f"; left the A records {', '.join(left)} alone" if left else ""
        progress.say(f"no droplet named {opts.name} tagged {TAG}: nothing to destroy{note}")
        return 0
    targets = [f"droplet {d.name} (id {d.id}, {d.ipv4 or 'no IP'}) and the A records "
               f"{' and '.join(map(dns.fqdn, names))} → {d.ipv4}" for d in droplets]
    targets += [f"firewall {wall.name} (id {wall.id})" for wall in walls]
    if opts.dry_run:
        for target in targets:
            progress.say(f"would delete {target}")
        progress.say("dry run: nothing was changed")
        return 0
    confirm_destroy(opts, targets, progress)
    for d in droplets:
        if d.ipv4:
            for line in dns.delete(names, d.ipv4):
                progress.say(line)
        do.destroy_droplet(d.id)
        progress.say(f"deleted droplet {d.name} (id {d.id})")
    for line in firewalls.delete(opts.firewall):
        progress.say(line)
    if HostKeyStore(opts.state_dir).forget_droplet(opts.name):
        progress.say(f"forgot the pinned host key of {opts.name}")
    return 0
