"""The droplet's SSH host key is replaced after the first login, for real: the 'droplet' is a
real sshd whose HostKey file is the one create-node.py rewrites and which it SIGHUPs through
the pid file, as on a droplet (see DropletBoot in conftest.py)."""

from __future__ import annotations

import signal
import stat
from pathlib import Path

from provision.hostkeys import HostKeyStore
from tests.e2e.provisioning.support import assert_one_error_line
from tests.fakes.sshd import fingerprint


def public(line: str) -> str:
    return " ".join(line.split()[:2])  # "TYPE BASE64", without the comment


def test_host_key_is_replaced_after_the_first_login_and_only_once(
        run, droplet_boot, droplet_args, tmp_path: Path):
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    handed_over = public(droplet_boot.cloud_config["ssh_keys"]["ed25519_public"])
    store = HostKeyStore(tmp_path / "state")
    pinned = store.droplet_key("lab")
    assert pinned is not None and public(pinned.public_line) != handed_over
    # The droplet has the new key where sshd reads it, private, and presents it now;
    # the same sshd process was reloaded, not replaced.
    node_key = droplet_boot.host_key
    assert node_key.read_text() == pinned.private_openssh
    assert stat.S_IMODE(node_key.stat().st_mode) == 0o600
    assert public(Path(f"{node_key}.pub").read_text()) == public(pinned.public_line)
    assert stat.S_IMODE(Path(f"{node_key}.pub").stat().st_mode) == 0o644
    assert droplet_boot.sshd.presented_key() == public(pinned.public_line)
    assert droplet_boot.sshd.process.poll() is None
    assert int(droplet_boot.pid_file.read_text()) == droplet_boot.sshd.process.pid
    # One line with the new fingerprint; the old key is gone from the state folder.
    (line,) = [x for x in result.stdout.splitlines() if "replaced the droplet's SSH host" in x]
    assert line.endswith(f"now pinned {pinned.fingerprint}")
    state_text = "".join(p.read_text() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert handed_over.split()[1] not in state_text
    assert store.pending_key("lab") is None and store.is_rotated("lab")

    again = run(*droplet_args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "replaced the droplet's SSH host key" not in again.stdout
    assert f"expecting host key {pinned.fingerprint}" in again.stdout
    assert store.droplet_key("lab") == pinned and node_key.read_text() == pinned.private_openssh


def test_a_rotation_interrupted_after_the_upload_is_finished_by_the_next_run(
        run, droplet_boot, droplet_args, tmp_path: Path):
    assert run(*droplet_args).returncode == 0
    store = HostKeyStore(tmp_path / "state")
    before = store.droplet_key("lab")
    assert before is not None
    # The state a crash leaves between upload and pin: a pending key on the droplet (sshd
    # reloaded with it), the old key still pinned, the rotation not recorded.
    (tmp_path / "state" / "droplets" / "lab" / "rotated").unlink()
    pending = store.new_pending_key("lab")
    droplet_boot.host_key.write_text(pending.private_openssh)
    Path(f"{droplet_boot.host_key}.pub").write_text(pending.public_line + "\n")
    droplet_boot.sshd.process.send_signal(signal.SIGHUP)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"host key rotation of an earlier run finished: now pinned {pending.fingerprint}" \
        in result.stdout
    assert "replaced the droplet's SSH host key" not in result.stdout  # not a third key
    assert store.droplet_key("lab") == pending and store.pending_key("lab") is None
    assert store.is_rotated("lab")
    assert droplet_boot.sshd.presented_key() == public(pending.public_line)


def test_the_new_key_is_saved_before_it_is_sent_and_a_failed_reload_is_recovered(
        run, droplet_boot, droplet_args, tmp_path: Path):
    # sshd's pid file is not where create-node.py looks: the reload fails after the upload.
    droplet_boot.pid_file = tmp_path / "elsewhere" / "sshd.pid"
    droplet_boot.pid_file.parent.mkdir()
    failed = run(*droplet_args)
    assert_one_error_line(failed, "new SSH host key is on", "sshd could not be reloaded",
                          "re-run")
    store = HostKeyStore(tmp_path / "state")
    pending, first = store.pending_key("lab"), store.droplet_key("lab")
    assert pending is not None and first is not None and pending != first
    assert droplet_boot.host_key.read_text() == pending.private_openssh  # what was sent
    assert not store.is_rotated("lab")
    handed_over = public(droplet_boot.cloud_config["ssh_keys"]["ed25519_public"])
    assert public(first.public_line) == handed_over  # still pinned, still accepted

    # The pid file is back where it belongs: the next run finishes the rotation.
    node_pid = droplet_boot.node_root / "run" / "sshd.pid"
    node_pid.parent.mkdir(exist_ok=True)
    node_pid.write_text(f"{droplet_boot.sshd.process.pid}\n")
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.droplet_key("lab") == pending and store.pending_key("lab") is None
    assert store.is_rotated("lab")
    assert droplet_boot.sshd.presented_key() == public(pending.public_line)
    assert pending.fingerprint in result.stdout
    assert fingerprint(Path(f"{droplet_boot.host_key}.pub")) == pending.fingerprint
