"""The instructor's SSH key: its public half (for the DigitalOcean account) and the private
key that logs in (from the file, unlocked with a passphrase, or held by ssh-agent)."""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import paramiko

from provision.errors import ProvisionError, one_line
from provision.hostkeys import public_key_from_line


@dataclass(frozen=True)
class UserKey:
    path: Path
    public_line: str

    @property
    def md5_fingerprint(self) -> str:
        """The fingerprint DigitalOcean shows for account keys (colon-separated MD5)."""
        blob = base64.b64decode(self.public_line.split()[1])
        digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    @property
    def blob(self) -> str:
        return self.public_line.split()[1]


class _Encrypted(Exception):
    pass


def _load_key(path: Path, passphrase: str | None = None) -> paramiko.PKey:
    """paramiko.PKey.from_path, with 'needs a passphrase' as one exception type.

    Depending on the key format, an encrypted key without a passphrase raises
    PasswordRequiredException or cryptography's TypeError.
    """
    try:
        return paramiko.PKey.from_path(path, passphrase.encode() if passphrase else None)
    except paramiko.PasswordRequiredException:
        raise _Encrypted from None
    except TypeError as exc:
        if passphrase is None and "password" in str(exc).lower():
            raise _Encrypted from None
        raise ProvisionError(f"cannot read SSH key {path}: {one_line(str(exc))}") from None
    except (ValueError, paramiko.SSHException, OSError) as exc:
        raise ProvisionError(f"cannot read SSH key {path}: {one_line(str(exc))}") from None


def read_user_key(path: Path) -> UserKey:
    """The instructor's public key, from PATH.pub or derived from PATH."""
    if not path.is_file():
        raise ProvisionError(
            f"SSH key {path} not found: create one with ssh-keygen -t ed25519 or give --ssh-key"
        )
    if path.suffix == ".pub":
        raise ProvisionError(f"--ssh-key {path} is a public key: give the private key next to "
                             f"it ({path.with_suffix('')})")
    pub = Path(str(path) + ".pub")
    if pub.is_file():
        line = pub.read_text(encoding="utf-8").strip()
        public_key_from_line(line)  # fails clearly on a broken file
        return UserKey(path, line)
    try:
        key = _load_key(path)
    except _Encrypted:
        raise ProvisionError(
            f"SSH key {path} is passphrase-protected and {pub} is missing: put the public "
            "key next to it (ssh-keygen -y -f KEY > KEY.pub)"
        ) from None
    return UserKey(path, f"{key.get_name()} {key.get_base64()}")


def check_private_key(user_key: UserKey) -> None:
    """Fail now if the private key cannot be read at all; a passphrase-protected one
    passes (it is unlocked, or found in ssh-agent, when it is used)."""
    with contextlib.suppress(_Encrypted):
        _load_key(user_key.path)


def login_key(user_key: UserKey, dry_run: bool) -> paramiko.PKey | None:
    """The key that will log in, read (and unlocked) before anything is made: a key that
    cannot log in is no reason to leave a droplet and DNS records behind. A dry run only
    checks that it can be read (and asks for no passphrase)."""
    if dry_run:
        check_private_key(user_key)
        return None
    return load_private_key(user_key)


def load_private_key(user_key: UserKey) -> paramiko.PKey | None:
    """The private key for authentication, or None to use a matching ssh-agent key."""
    try:
        return _load_key(user_key.path)
    except _Encrypted:
        pass
    agent_blobs = {k.get_base64() for k in paramiko.Agent().get_keys()}
    if user_key.blob in agent_blobs:
        return None
    if not sys.stdin.isatty():
        raise ProvisionError(
            f"SSH key {user_key.path} is passphrase-protected: add it to ssh-agent (ssh-add)"
        )
    passphrase = getpass.getpass(f"Passphrase for {user_key.path}: ")
    try:
        return _load_key(user_key.path, passphrase)
    except (_Encrypted, ProvisionError):
        raise ProvisionError(f"cannot unlock SSH key {user_key.path}: wrong passphrase?") \
            from None
