"""Host keys: the cloud-init user data carries the pinned key; the local store keeps it safe."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import paramiko
import pytest
import yaml

from provision.errors import ProvisionError
from provision.hostkeys import (
    HostKeyStore,
    cloud_init_user_data,
    generate_host_key,
    host_entry,
    sha256_fingerprint,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_user_data_is_cloud_config_with_exactly_the_pinned_key():
    key = generate_host_key("workshop-appliance-lab")
    text = cloud_init_user_data(key)
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["ssh_deletekeys"] is True and config["ssh_genkeytypes"] == []
    assert config["ssh_keys"]["ed25519_public"] == key.public_line
    # The private key in the user data is the one whose public half we pin.
    private = config["ssh_keys"]["ed25519_private"]
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    loaded = paramiko.Ed25519Key.from_private_key(io.StringIO(private))
    assert loaded.get_base64() == key.public_line.split()[1]
    assert sha256_fingerprint(loaded) == key.fingerprint
    assert len(text) < 16 * 1024  # far below DigitalOcean's 64 KiB user data limit
    # sshd is told to offer only that key, whatever other key files appear later.
    (dropin,) = config["write_files"]
    assert dropin["path"].startswith("/etc/ssh/sshd_config.d/")
    assert dropin["path"].endswith(".conf")  # Ubuntu's and Debian's sshd_config include *.conf
    host_keys = [line for line in dropin["content"].splitlines() if line.startswith("HostKey")]
    assert host_keys == ["HostKey /etc/ssh/ssh_host_ed25519_key"]


def test_each_generated_key_is_new():
    assert generate_host_key("a").public_line != generate_host_key("a").public_line


def test_store_saves_private_key_0600_and_reuses_it(tmp_path: Path):
    store = HostKeyStore(tmp_path / "state")
    assert store.droplet_key("lab") is None
    key = store.new_droplet_key("lab")
    folder = tmp_path / "state" / "droplets" / "lab"
    assert mode(folder / "ssh_host_ed25519_key") == 0o600
    assert mode(tmp_path / "state") == 0o700
    assert store.droplet_key("lab") == key
    assert store.new_droplet_key("lab") == key  # a crash before create loses nothing
    assert store.forget_droplet("lab") and store.droplet_key("lab") is None
    assert not store.forget_droplet("lab")


@pytest.mark.parametrize("name", ["", "../evil", ".hidden", "a/b"])
def test_store_refuses_names_that_escape(tmp_path: Path, name: str):
    with pytest.raises(ProvisionError):
        HostKeyStore(tmp_path).new_droplet_key(name)


def test_trust_on_first_use_file(tmp_path: Path):
    store = HostKeyStore(tmp_path / "state")
    key = generate_host_key("x").pkey
    store.pin_server_key(host_entry("203.0.113.5", 2222), key)
    store.pin_server_key(host_entry("lab.example.org", 22), key)
    assert mode(store.known_hosts_path) == 0o600
    pinned = store.pinned_server_keys()
    assert pinned.lookup("[203.0.113.5]:2222")["ssh-ed25519"] == key
    assert pinned.lookup("lab.example.org")["ssh-ed25519"] == key
    assert pinned.lookup("[lab.example.org]:2222") is None


def test_rotation_state_pending_then_promoted(tmp_path: Path):
    store = HostKeyStore(tmp_path / "state")
    first = store.new_droplet_key("lab")
    assert not store.is_rotated("lab") and store.pending_key("lab") is None
    pending = store.new_pending_key("lab")
    assert pending != first and store.pending_key("lab") == pending
    assert mode(tmp_path / "state" / "droplets" / "lab" / "pending" / "ssh_host_ed25519_key") \
        == 0o600
    assert store.new_pending_key("lab") == pending  # an interrupted rotation's key is kept
    assert store.droplet_key("lab") == first  # still pinned until the droplet has the new one
    assert store.promote_pending("lab") == pending
    assert store.droplet_key("lab") == pending and store.pending_key("lab") is None
    assert store.is_rotated("lab")
    files = "".join(p.read_text() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert first.public_line.split()[1] not in files  # the old key is forgotten
    with pytest.raises(ProvisionError, match="no pending host key"):
        store.promote_pending("lab")


def test_a_new_droplet_gets_the_pinned_key_again_and_counts_as_not_rotated(tmp_path: Path):
    store = HostKeyStore(tmp_path / "state")
    store.new_droplet_key("lab")
    store.new_pending_key("lab")
    rotated = store.promote_pending("lab")
    store.new_pending_key("lab")  # left over from the old droplet's next rotation
    # The old droplet is gone; the next one is handed the pinned key in its user data.
    assert store.new_droplet_key("lab") == rotated
    assert not store.is_rotated("lab") and store.pending_key("lab") is None


def test_a_marker_of_another_key_does_not_count(tmp_path: Path):
    store = HostKeyStore(tmp_path / "state")
    store.new_droplet_key("lab")
    (tmp_path / "state" / "droplets" / "lab" / "rotated").write_text("SHA256:someother\n")
    assert not store.is_rotated("lab")
