#!/usr/bin/env python3
"""Create (or reuse) a workshop node and set it up: `python create-node.py --hostname lab`.

Runs on the instructor's laptop. DigitalOcean path: droplet, DNS records (HOST and
*.HOST), cloud firewall, then SSH (host key pinned, then replaced), upload of this
checkout and certbot's DNS credentials, setup-node.sh, health check. With --ssh
USER@HOST an existing server is set up instead.
Needs `pip install -r provision/requirements.txt`. See --help.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# An instructor's laptop may have an older Python than the project targets: say so
# plainly instead of failing on an import (tomllib is 3.11+).
if sys.version_info < (3, 11):  # noqa: UP036
    print("create-node: error: Python 3.11 or newer is needed (this is "
          f"{sys.version.split()[0]})", file=sys.stderr)
    sys.exit(2)

# The helpers live next to this script; make that work from any directory.
ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

try:
    import paramiko

    from provision.api import Api
    from provision.backoff import Backoff
    from provision.capacity import Headcount, holds, too_small
    from provision.credentials import (
        DnsCredentials,
        dns_credentials,
        dns_token_advice,
        token_from_env,
    )
    from provision.destroy import run_destroy
    from provision.digitalocean import TAG, DigitalOcean, Droplet
    from provision.dns import Dns, node_names
    from provision.errors import EXIT_FAILURE, ProvisionError, report
    from provision.firewall import Firewalls
    from provision.hostkeys import HostKey, HostKeyStore, cloud_init_user_data, sha256_fingerprint
    from provision.node import Extras, plan_setup, set_up_node
    from provision.options import Options, parse_options
    from provision.progress import Progress
    from provision.rotation import accepted_keys, rotate_host_key
    from provision.sizes import describe_size
    from provision.ssh import AnyOf, Route, TrustOnFirstUse
    from provision.upload import UploadItem, select_files
    from provision.userkey import login_key, read_user_key
    from services.workshop.roster import parse as parse_roster
except ImportError as exc:  # the one error that cannot use our own reporting
    print(f"create-node: error: {exc.name or exc} is not installed: "
          "pip install -r provision/requirements.txt", file=sys.stderr)
    sys.exit(2)


FIRST_BOOT_GRACE = 90.0  # seconds


def headcount(users: Path) -> Headcount:
    """Who --users lists, read with the hub's own parser (broken lines are skipped)."""
    try:
        roster = parse_roster(users.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"--users {users}: cannot read it ({exc}); the hub could not "
                             "either") from None
    return Headcount(participants=len(roster.participants),
                     instructors=len(roster.instructors), skipped=len(roster.problems))


def check_capacity(opts: Options, count: Headcount | None, progress: Progress) -> None:
    """Before a droplet is created: say what the size holds and refuse one that is too
    small for --users (unless --force)."""
    progress.say(holds(opts.size))
    if count is None:
        return
    progress.say(f"{opts.users}: {count}")
    why = too_small(opts.size, count, str(opts.users))
    if why is None:
        return
    if not opts.force:
        raise ProvisionError(f"{why}; or add --force to create this size anyway")
    print(f"create-node: warning: {why}; --force: creating this size anyway",
          file=sys.stderr, flush=True)


def run_ssh(opts: Options, progress: Progress, files: list[UploadItem],
            count: Headcount | None) -> int:
    assert opts.target is not None
    target, store = opts.target, HostKeyStore(opts.state_dir)
    if count is not None:
        progress.say(f"{opts.users}: {count}; capacity unknown for a server given with "
                     "--ssh (Readme: How many participants a droplet holds)")
    user_key = read_user_key(opts.ssh_key)  # a missing key is reported before anything else
    pkey = login_key(user_key, opts.dry_run)
    if opts.dry_run:
        plan_setup(opts, str(target), files, progress)
        return 0
    policy: paramiko.MissingHostKeyPolicy | None
    if opts.known_hosts:
        pinned = paramiko.HostKeys()
        try:
            pinned.load(str(opts.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise ProvisionError(f"cannot read --known-hosts {opts.known_hosts}: {exc}") \
                from None
        policy = None  # unknown to that file: refused
    else:
        pinned = store.pinned_server_keys()

        def pin(entry: str, key: paramiko.PKey) -> None:
            store.pin_server_key(entry, key)
            progress.say(f"first connection to {entry}: pinned its host key "
                         f"{sha256_fingerprint(key)} in {store.known_hosts_path}")

        policy = TrustOnFirstUse(pin)
    progress.say(f"setting up {opts.fqdn} on {target}")
    if opts.known_hosts:
        hint = f"the key in {opts.known_hosts} is the one expected"
    else:
        hint = (f"if the server was really reinstalled, delete its line in "
                f"{store.known_hosts_path} and check the new fingerprint on first use")
    wait = Backoff(first=0.5, factor=1.5, maximum=10.0, timeout=min(opts.ssh_timeout, 60.0))
    route = Route(target.host, target.port, target.user, pkey, pinned, policy, wait, hint)
    set_up_node(opts, progress, route, files)
    return 0


def plan_create(opts: Options, dns: Dns, firewalls: Firewalls, existing: list[Droplet],
                files: list[UploadItem], credentials: DnsCredentials,
                progress: Progress) -> None:
    names = node_names(opts.hostname)
    if existing:
        d = existing[0]
        progress.say(f"would reuse droplet {d.name} (id {d.id}, {d.ipv4 or 'no IP yet'})")
        for name, records in dns.a_records(names).items():
            now = ", ".join(r.data for r in records) or "no A record"
            progress.say(f"would point {dns.fqdn(name)} at {d.ipv4} (now: {now})")
        progress.say(firewalls.plan(opts.firewall, d.id))
    else:
        progress.say(f"would create droplet {opts.name}: {describe_size(opts.size)}, "
                     f"{opts.image} in {opts.region}, tagged {TAG}")
        progress.say(f"would create the A records {' and '.join(map(dns.fqdn, names))} → the "
                     "droplet's IPv4")
        progress.say(firewalls.plan(opts.firewall, None))
    if existing and HostKeyStore(opts.state_dir).is_rotated(opts.name):
        progress.say("the droplet's SSH host key was already replaced after its first login")
    else:
        progress.say("would replace the droplet's SSH host key (the one in its user data) "
                     "after the first login")
    plan_setup(opts, f"root@{opts.fqdn}", files, progress, credentials)


def obtain_droplet(opts: Options, do: DigitalOcean, existing: list[Droplet], key_id: int,
                   progress: Progress) -> tuple[Droplet, HostKey, bool]:
    """The droplet (reused or created exactly once), its pinned host key, and whether it
    was created by this run."""
    store = HostKeyStore(opts.state_dir)
    poll = Backoff(first=0.5, factor=1.5, maximum=10.0, timeout=600.0)
    if existing:
        droplet, host_key = existing[0], store.droplet_key(opts.name)
        if host_key is None:
            raise ProvisionError(
                f"droplet {opts.name} (id {droplet.id}) exists but its host key is not pinned "
                f"in {opts.state_dir}: run from the machine that created it (or copy that "
                f"state directory), or --destroy it and create it again")
        progress.say(f"reusing droplet {droplet.name} (id {droplet.id})")
        return do.wait_active(droplet.id, poll), host_key, False
    host_key = store.new_droplet_key(opts.name)
    droplet, action_id = do.create_droplet(opts.name, opts.region, opts.size, opts.image,
                                           key_id, cloud_init_user_data(host_key))
    progress.say(f"droplet {droplet.name} created (id {droplet.id}, "
                 f"{describe_size(opts.size)}), waiting for it to boot")
    removed = do.remove_duplicates(opts.name, keep=droplet.id)
    if removed:
        progress.say(f"removed duplicate droplets {removed} left by a retried create")
    if action_id is not None:
        do.wait_action(action_id, f"creating droplet {opts.name}", poll)
    return do.wait_active(droplet.id, poll), host_key, True


def run_create(opts: Options, do: DigitalOcean, dns: Dns, firewalls: Firewalls,
               progress: Progress, files: list[UploadItem], count: Headcount | None,
               credentials: DnsCredentials) -> int:
    user_key = read_user_key(opts.ssh_key)
    pkey = login_key(user_key, opts.dry_run)
    key_id = do.account_key_id(user_key)
    do.check_domain(dns.domain)
    progress.say(f"token accepted, SSH key {user_key.md5_fingerprint} and domain "
                 f"{dns.domain} found on the account")
    if not credentials.dns_only:
        progress.say(dns_token_advice())
    existing = do.find_droplets(opts.name)
    if len(existing) > 1:
        ids = ", ".join(str(d.id) for d in existing)
        raise ProvisionError(f"{len(existing)} droplets are named {opts.name} and tagged {TAG} "
                             f"(ids {ids}): destroy the extra ones, then re-run")
    if not existing:
        do.check_size(opts.size, opts.region)
        check_capacity(opts, count, progress)
    elif count is not None:
        progress.say(f"{opts.users}: {count}; droplet {opts.name} exists, so its size is "
                     "kept as it is and not checked against them")
    if opts.dry_run:
        plan_create(opts, dns, firewalls, existing, files, credentials, progress)
        return 0

    droplet, host_key, created = obtain_droplet(opts, do, existing, key_id, progress)
    assert droplet.ipv4 is not None
    progress.say(f"droplet {droplet.name} is active at {droplet.ipv4}")
    for line in dns.ensure(node_names(opts.hostname), droplet.ipv4):
        progress.say(f"DNS: {line}")
    for line in firewalls.ensure(opts.firewall, droplet.id):
        progress.say(line)
    store = HostKeyStore(opts.state_dir)
    progress.say(f"expecting host key {host_key.fingerprint} (pinned in {opts.state_dir})")
    # A new droplet takes a minute or two to boot; an existing one answers at once.
    timeout = opts.ssh_timeout if created else min(opts.ssh_timeout, 60.0)
    hint = ("the droplet must present the key made for it; if it was rebuilt outside "
            "create-node.py, --destroy it and create it again")
    route = Route(
        droplet.ipv4, opts.ssh_port, "root", pkey, paramiko.HostKeys(),
        AnyOf(accepted_keys(store, opts.name, host_key)),
        Backoff(first=0.5, factor=1.5, maximum=10.0, timeout=timeout), hint,
        # A droplet created by this run may show the image's host key for a moment
        # before cloud-init installs ours: allow it a short grace (see ssh.connect).
        settle=FIRST_BOOT_GRACE if created else 0.0)

    def after_login(client: paramiko.SSHClient) -> paramiko.SSHClient:
        return rotate_host_key(client, route, store, opts.name, opts.node, progress)

    set_up_node(opts, progress, route, files, Extras(after_login, credentials))
    return 0


def main(argv: list[str] | None = None) -> int:
    progress = Progress()
    try:
        opts = parse_options(argv, os.environ)
        if opts.mode == "destroy":
            files: list[UploadItem] = []
        else:
            files = select_files(ROOT, opts.users)
        # Only a --users file is uploaded (never the local users.txt): it is what the
        # node will serve, so it is what the size is checked against.
        count = headcount(opts.users) if opts.users and opts.mode != "destroy" else None
        if opts.mode == "ssh":
            return run_ssh(opts, progress, files, count)
        token = token_from_env(os.environ)
        api_retry = Backoff(first=1.0, factor=2.0, maximum=30.0, timeout=opts.api_timeout)
        api = Api(token, opts.api_url, progress, api_retry)
        assert opts.domain is not None
        do, dns, firewalls = DigitalOcean(api), Dns(api, opts.domain), Firewalls(api)
        if opts.mode == "destroy":
            return run_destroy(opts, do, dns, firewalls, progress)
        credentials = dns_credentials(os.environ, token, opts.node.dns_credentials)
        return run_create(opts, do, dns, firewalls, progress, files, count, credentials)
    except ProvisionError as exc:
        report(exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\ncreate-node: interrupted; re-running is safe", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for the instructor, unless asked
        if os.environ.get("WORKSHOP_DEBUG"):
            raise
        report(ProvisionError(f"unexpected {type(exc).__name__}: {exc} "
                              "(set WORKSHOP_DEBUG=1 for the traceback)"))
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
