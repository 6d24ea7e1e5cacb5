"""Files to the node over SFTP: this checkout, and private files (users.txt, secrets, keys).

A file's mode is set before any byte is written, so a 0600 file is never readable by
others on the node, not even half-written. Secrets travel only this way, never in a
command line (which other processes on the node can read).
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Sequence

import paramiko

from provision.errors import ProvisionError
from provision.upload import UploadItem


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def make_dirs(sftp: paramiko.SFTPClient, path: str, mode: int) -> None:
    """Create path and its missing parents with mode; existing ones are left as they are."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        folder = "/" + "/".join(parts[:i])
        if not _exists(sftp, folder):
            sftp.mkdir(folder, mode)
            sftp.chmod(folder, mode)  # mkdir's mode passes through the server's umask


def write_file(sftp: paramiko.SFTPClient, path: str, data: bytes, mode: int) -> None:
    with sftp.open(path, "wb") as handle:
        handle.chmod(mode)  # before the first byte, also when the file existed with another
        handle.set_pipelined(True)
        handle.write(data)


def put_private(client: paramiko.SSHClient, path: str, data: bytes, mode: int = 0o600,
                dir_mode: int = 0o700) -> None:
    """Write a secret file; folders made for it are private too."""
    with client.open_sftp() as sftp:
        make_dirs(sftp, posixpath.dirname(path), dir_mode)
        write_file(sftp, path, data, mode)


def replace_files(client: paramiko.SSHClient, files: Sequence[tuple[str, bytes, int]]) -> None:
    """Write (path, data, mode) files next to their targets, then rename each over its
    target, so a reader (sshd) sees the old file or the new one, never half of one."""
    with client.open_sftp() as sftp:
        for path, data, mode in files:
            write_file(sftp, path + ".workshop-new", data, mode)
        for path, _, _ in files:
            sftp.posix_rename(path + ".workshop-new", path)


def upload(client: paramiko.SSHClient, items: Sequence[UploadItem], remote_dir: str) -> int:
    """Copy the selected files under remote_dir; return the number of bytes sent.

    Existing directories are left as they are (home/ and tmp/ hold data with
    their own owners and modes); files are overwritten and get their mode.
    """
    sent = 0
    with client.open_sftp() as sftp:
        make_dirs(sftp, remote_dir, 0o755)  # e.g. /opt/workshop and /opt
        for item in items:
            remote = posixpath.join(remote_dir, item.remote)
            if item.local is None:
                try:
                    attrs = sftp.stat(remote)
                except FileNotFoundError:
                    sftp.mkdir(remote, item.mode)
                    continue
                if not stat.S_ISDIR(attrs.st_mode or 0):
                    raise ProvisionError(f"{remote} on the node is not a directory")
                continue
            data = item.local.read_bytes()
            write_file(sftp, remote, data, item.mode)
            sent += len(data)
    return sent
