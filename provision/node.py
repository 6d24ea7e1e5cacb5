"""On the node: log in (host key verified), upload, run setup-node.sh, check health.

The same for a droplet and for a server given with --ssh; a droplet also gets its
host key replaced (provision/rotation.py) and certbot's DNS credentials.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from provision.backoff import Backoff
from provision.credentials import DnsCredentials
from provision.errors import ProvisionError
from provision.health import health_url, wait_healthy
from provision.options import Options, setup_command
from provision.progress import Progress
from provision.sftp import put_private, upload
from provision.ssh import Route, connect, run_streaming
from provision.upload import USERS_REMOTE, UploadItem


@dataclass(frozen=True)
class Extras:
    """What a droplet gets beyond what every node gets."""

    # Called with the first verified connection; returns the one to go on with.
    after_login: Callable[[paramiko.SSHClient], paramiko.SSHClient] | None = None
    credentials: DnsCredentials | None = None


def set_up_node(opts: Options, progress: Progress, route: Route, files: list[UploadItem],
                extras: Extras | None = None) -> None:
    extras = extras or Extras()
    client = connect(route, progress)
    host = route.host
    try:
        if extras.after_login is not None:
            client = extras.after_login(client)
        count = sum(1 for item in files if not item.is_dir)
        progress.say(f"uploading {count} files to {opts.remote_dir} on {host}")
        sent = upload(client, files, opts.remote_dir)
        if opts.users:
            progress.say(f"uploaded {opts.users} as {USERS_REMOTE} (mode 0600)")
        if extras.credentials is not None:
            put_private(client, extras.credentials.path, extras.credentials.content)
            progress.say(f"uploaded certbot's DNS credentials ({extras.credentials.source}) "
                         f"to {extras.credentials.path} (mode 0600)")
        progress.say(f"uploaded {sent / 1024:.0f} KiB; running setup-node.sh")
        result = run_streaming(client, shlex.join(setup_command(opts)), progress)
    finally:
        client.close()
    if result.status != 0:
        step = result.failed_step or result.last_step or "(before the first step)"
        raise ProvisionError(
            f"setup-node.sh failed at step {step} (exit {result.status}) on {host}; "
            f"its last {len(result.tail)} lines:",
            details=[f"    {line}" for line in result.tail],
        )
    progress.say("setup-node.sh finished")
    url_check = Backoff(first=0.5, factor=1.5, maximum=10.0, timeout=opts.health_timeout)
    wait_healthy(opts.fqdn, host, opts.tls, opts.health_port, url_check, progress)
    scheme = "https" if opts.tls else "http"
    print(f"\nThe workshop node is ready: {scheme}://{opts.fqdn}/")
    print(f"Add participants: ssh {route.user}@{opts.fqdn} and edit "
          f"{opts.remote_dir}/{USERS_REMOTE} (one username:password per line);\n"
          "changes apply within seconds, no restart. Or re-run this command with --users FILE.")


def plan_setup(opts: Options, where: str, files: list[UploadItem], progress: Progress,
               credentials: DnsCredentials | None = None) -> None:
    count = sum(1 for item in files if not item.is_dir)
    progress.say(f"would upload {count} files to {where}:{opts.remote_dir}")
    if credentials is not None:
        progress.say(f"would upload certbot's DNS credentials ({credentials.source}) to "
                     f"{credentials.path} (mode 0600)")
    progress.say(f"would run: {shlex.join(setup_command(opts))}")
    progress.say(f"would wait for {health_url(opts.fqdn, opts.tls, opts.health_port)}")
    progress.say("dry run: nothing was changed")
