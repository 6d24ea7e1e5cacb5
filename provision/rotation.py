"""Replacing a droplet's SSH host key once the key from its user data has done its job.

The first host key travels in cloud-init user data, which anything on the droplet
can read at the metadata address for the droplet's whole life; whoever reads it
could impersonate the node. So after the first login verified against it, a new
key, made on the laptop, replaces it over that verified connection:

  1. the new key is saved in the state folder as pending (before it leaves);
  2. it is written to the droplet (private 0600, renamed over the old files);
  3. sshd is reloaded, and a new connection must present the new key;
  4. the new key is pinned and the old one forgotten.

Interrupted between 2 and 4, the next run connects with either key (the pending
one counts as pinned too); finding the pending key on the droplet, it finishes at 4.
"""

from __future__ import annotations

import dataclasses

import paramiko

from provision.backoff import Backoff
from provision.errors import ProvisionError, one_line
from provision.hostkeys import HostKey, HostKeyStore
from provision.nodefiles import NodeFiles
from provision.progress import Progress
from provision.sftp import replace_files
from provision.ssh import AnyOf, Route, connect, presented_key, run_command

RELOAD_GRACE = 15.0  # seconds an sshd may still answer with its old key after a reload


def accepted_keys(store: HostKeyStore, name: str, pinned: HostKey) -> list[paramiko.PKey]:
    """The keys a droplet may present: the pinned one, and an unfinished rotation's."""
    pending = store.pending_key(name)
    return [pinned.pkey] + ([pending.pkey] if pending else [])


def rotate_host_key(client: paramiko.SSHClient, route: Route, store: HostKeyStore, name: str,
                    node: NodeFiles, progress: Progress) -> paramiko.SSHClient:
    """Make sure the droplet's host key is not the one in its user data; return the
    connection to go on with (a new one when the key was replaced)."""
    pending = store.pending_key(name)
    if pending is not None and _same(presented_key(client), pending):
        key = store.promote_pending(name)
        progress.say(f"host key rotation of an earlier run finished: now pinned "
                     f"{key.fingerprint}")
        return client
    if store.is_rotated(name):
        return client
    new = store.new_pending_key(name)  # in the state folder before it is on the droplet
    replace_files(client, [
        (node.host_key + ".pub", (new.public_line + "\n").encode(), 0o644),
        (node.host_key, new.private_openssh.encode(), 0o600),
    ])
    status, output = run_command(client, node.reload_sshd())
    if status != 0:
        raise ProvisionError(
            f"the new SSH host key is on {route.name}, but sshd could not be reloaded "
            f"(exit {status}: {one_line(output)[-200:]}); re-run to finish the rotation")
    client.close()
    check = dataclasses.replace(
        route, pinned=paramiko.HostKeys(), policy=AnyOf([new.pkey]), settle=RELOAD_GRACE,
        wait=Backoff(first=0.2, factor=1.5, maximum=5.0, timeout=60.0),
        settle_reason="sshd may still be reloading",
        mismatch_hint="sshd did not take the new key; re-run to try again")
    client = connect(check, progress)
    store.promote_pending(name)
    progress.say(f"replaced the droplet's SSH host key (the one in its user data is void): "
                 f"now pinned {new.fingerprint}")
    return client


def _same(key: paramiko.PKey, host_key: HostKey) -> bool:
    return key.asbytes() == host_key.pkey.asbytes()
