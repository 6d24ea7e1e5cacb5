"""SSH host keys: generated here for droplets, pinned on first use for --ssh.

Why generate the droplet's host key on the laptop: a new droplet's own key is
unknown to us, and accepting whatever answers first would let anyone on the
path impersonate it. Handing the droplet a key we made (cloud-init `ssh_keys`)
means the very first connection is already verified.

But cloud-init user data stays readable at the droplet's metadata address
(169.254.169.254) for as long as the droplet lives, so that key must not stay
valid: after the first verified login a new key replaces it over the verified
channel (provision/rotation.py). The new key is saved here as pending before it
leaves this machine, so a run interrupted halfway still recognises the droplet.

State layout under the state directory (mode 0700):
    droplets/<name>/ssh_host_ed25519_key(.pub)          the droplet's pinned key
    droplets/<name>/rotated                             its fingerprint, once it is no
                                                        longer the one in user data
    droplets/<name>/pending/ssh_host_ed25519_key(.pub)  the next key, during a rotation
    known_hosts                                         keys pinned for --ssh servers
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provision.errors import ProvisionError

KEY_FILE = "ssh_host_ed25519_key"
KNOWN_HOSTS = "known_hosts"
PENDING = "pending"
ROTATED = "rotated"
NODE_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"  # where cloud-init puts an ed25519 key


@dataclass(frozen=True)
class HostKey:
    private_openssh: str  # OpenSSH private key text, as cloud-init expects it
    public_line: str  # "ssh-ed25519 AAAA... comment"

    @property
    def pkey(self) -> paramiko.PKey:
        return public_key_from_line(self.public_line)

    @property
    def fingerprint(self) -> str:
        return sha256_fingerprint(self.pkey)


def public_key_from_line(line: str) -> paramiko.PKey:
    """Parse an OpenSSH public key line ("TYPE BASE64 [comment]")."""
    try:
        key_type, blob = line.split()[:2]
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
    except (ValueError, paramiko.SSHException) as exc:
        raise ProvisionError(f"not an SSH public key: {line[:40]!r}... ({exc})") from None


def sha256_fingerprint(key: paramiko.PKey) -> str:
    """The fingerprint as `ssh-keygen -lf` and ssh print it: SHA256:base64."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def generate_host_key(comment: str) -> HostKey:
    private = Ed25519PrivateKey.generate()
    private_text = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public_text = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return HostKey(private_text, f"{public_text} {comment}")


def cloud_init_user_data(key: HostKey) -> str:
    """cloud-config that installs `key` as the droplet's only SSH host key.

    ssh_deletekeys removes the image's keys and the empty ssh_genkeytypes stops
    cloud-init from generating others; the sshd drop-in names our key as the only
    HostKey, so even a key file of another type made later (a package's postinst,
    `ssh-keygen -A`) is never offered: the server can only present the pinned key.
    """
    private = "\n".join("    " + line for line in key.private_openssh.strip().splitlines())
    return (
        "#cloud-config\n"
        "# Written by create-node.py: the host key is pinned on the instructor's machine.\n"
        "ssh_deletekeys: true\n"
        "ssh_genkeytypes: []\n"
        "ssh_keys:\n"
        "  ed25519_private: |\n"
        f"{private}\n"
        f"  ed25519_public: {key.public_line}\n"
        "write_files:\n"
        "  - path: /etc/ssh/sshd_config.d/10-workshop-hostkey.conf\n"
        "    permissions: '0644'\n"
        "    content: |\n"
        "      # create-node.py pins this key on the instructor's machine: offer no other.\n"
        f"      HostKey {NODE_HOST_KEY}\n"
    )


def _write_private(path: Path, text: str, mode: int) -> None:
    # Write to a temporary name created with the final mode, then rename, so
    # the key is never readable by others, not even for a moment.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _read_key(folder: Path) -> HostKey | None:
    private, public = folder / KEY_FILE, folder / (KEY_FILE + ".pub")
    if not (private.is_file() and public.is_file()):
        return None
    try:
        return HostKey(private.read_text(encoding="utf-8"),
                       public.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ProvisionError(f"cannot read the host key in {folder}: {exc}") from None


class HostKeyStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def _ensure_dir(self, path: Path) -> None:
        # mkdir(parents=True) gives only the last directory the mode: create the
        # state directory and each one below it private (0700) ourselves.
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        relative = path.relative_to(self.state_dir).parts
        for depth in range(len(relative) + 1):
            folder = self.state_dir.joinpath(*relative[:depth])
            if not folder.is_dir():
                folder.mkdir(mode=0o700)
                folder.chmod(0o700)  # mkdir's mode is masked by the umask

    def _droplet_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ProvisionError(f"droplet name {name!r} cannot be used as a directory name")
        return self.state_dir / "droplets" / name

    def droplet_key(self, name: str) -> HostKey | None:
        """The key the droplet must present."""
        return _read_key(self._droplet_dir(name))

    def pending_key(self, name: str) -> HostKey | None:
        """The key a rotation is installing, until it is pinned."""
        return _read_key(self._droplet_dir(name) / PENDING)

    def new_pending_key(self, name: str) -> HostKey:
        """The next host key, saved before it leaves this machine. One left by an
        interrupted rotation is taken again: it may already be on the droplet."""
        existing = self.pending_key(name)
        if existing is not None:
            return existing
        key = generate_host_key(f"workshop-appliance-{name}")
        self._save_key(self._droplet_dir(name) / PENDING, key)
        return key

    def promote_pending(self, name: str) -> HostKey:
        """Pin the pending key in place of the old one (which is gone afterwards) and
        mark the droplet rotated. Safe to repeat if interrupted: the pending key is
        removed last, and until then it is accepted too."""
        key = self.pending_key(name)
        if key is None:
            raise ProvisionError(f"no pending host key for {name} in {self.state_dir}")
        folder = self._droplet_dir(name)
        self._save_key(folder, key)
        _write_private(folder / ROTATED, key.fingerprint + "\n", 0o600)
        shutil.rmtree(folder / PENDING)
        return key

    def is_rotated(self, name: str) -> bool:
        """Whether the pinned key is one that never was in the droplet's user data."""
        key, marker = self.droplet_key(name), self._droplet_dir(name) / ROTATED
        try:
            return key is not None and marker.read_text().strip() == key.fingerprint
        except FileNotFoundError:
            return False

    def _save_key(self, folder: Path, key: HostKey) -> None:
        self._ensure_dir(folder)
        _write_private(folder / KEY_FILE, key.private_openssh, 0o600)
        _write_private(folder / (KEY_FILE + ".pub"), key.public_line + "\n", 0o644)

    def new_droplet_key(self, name: str) -> HostKey:
        """Generate and save a host key for a droplet about to be created.

        A key left from an earlier droplet of the same name is reused: it never
        left this machine except to our own droplets, and keeping it means a
        crash between saving and creating cannot strand a droplet. It goes into
        user data again, so it counts as not rotated (and a pending key of the
        earlier droplet is dropped).
        """
        folder = self._droplet_dir(name)
        (folder / ROTATED).unlink(missing_ok=True)
        if (folder / PENDING).is_dir():
            shutil.rmtree(folder / PENDING)
        existing = self.droplet_key(name)
        if existing is not None:
            return existing
        key = generate_host_key(f"workshop-appliance-{name}")
        self._save_key(folder, key)
        return key

    def forget_droplet(self, name: str) -> bool:
        folder = self._droplet_dir(name)
        if folder.is_dir():
            shutil.rmtree(folder)
            return True
        return False

    @property
    def known_hosts_path(self) -> Path:
        return self.state_dir / KNOWN_HOSTS

    def pinned_server_keys(self) -> paramiko.HostKeys:
        keys = paramiko.HostKeys()
        if self.known_hosts_path.is_file():
            try:
                keys.load(str(self.known_hosts_path))
            except (OSError, paramiko.SSHException) as exc:
                raise ProvisionError(f"cannot read {self.known_hosts_path}: {exc}") from None
        return keys

    def pin_server_key(self, host_entry: str, key: paramiko.PKey) -> None:
        keys = self.pinned_server_keys()
        keys.add(host_entry, key.get_name(), key)
        self._ensure_dir(self.state_dir)
        # HostKeys.save() would create the file with the umask's mode; create
        # it 0600 first, save() then only truncates and rewrites it.
        if not self.known_hosts_path.exists():
            _write_private(self.known_hosts_path, "", 0o600)
        keys.save(str(self.known_hosts_path))


def host_entry(host: str, port: int) -> str:
    """The known_hosts name for host:port, as OpenSSH and paramiko spell it."""
    return host if port == 22 else f"[{host}]:{port}"
