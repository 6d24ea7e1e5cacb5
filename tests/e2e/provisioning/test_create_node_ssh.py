"""create-node.py --ssh USER@HOST:PORT against a real sshd on 127.0.0.1: trust on first use
pinned in the state directory, changed keys refused, upload and setup-node.sh run."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.provisioning.support import FQDN, assert_one_error_line
from tests.fakes.digitalocean import FakeDigitalOcean
from tests.fakes.hubhealth import HubHealth
from tests.fakes.sshd import Sshd, fingerprint, free_port, keygen


@pytest.fixture
def server_key(tmp_path: Path) -> Path:
    path = tmp_path / "server-host-key"
    keygen(path, "server")
    return path


@pytest.fixture
def server(servers, server_key: Path) -> Sshd:
    return servers.sshd(server_key)


def ssh_args(server: Sshd, hub: HubHealth, remote_dir: Path, *extra: str) -> list[str]:
    return ["--hostname", FQDN, "--ssh", f"root@127.0.0.1:{server.port}",
            "--remote-dir", str(remote_dir), "--setup-only", "check",
            "--health-port", str(hub.port), "--health-timeout", "10", *extra]


def test_first_use_pins_the_key_then_changed_key_is_refused(
        run, server: Sshd, server_key: Path, servers, hub, remote_dir: Path, tmp_path: Path,
        fake_do: FakeDigitalOcean):
    first = run(*ssh_args(server, hub, remote_dir))
    assert first.returncode == 0, first.stdout + first.stderr
    expected = fingerprint(Path(f"{server_key}.pub"))
    assert f"pinned its host key {expected}" in first.stdout
    known_hosts = tmp_path / "state" / "known_hosts"
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    entry = known_hosts.read_text().split()
    assert entry[0] == f"[127.0.0.1]:{server.port}"
    assert entry[2] == Path(f"{server_key}.pub").read_text().split()[1]
    assert (remote_dir / "setup-node.sh").is_file()
    assert "node| ==> [check] project files present" in first.stdout
    assert fake_do.log == []  # DigitalOcean is not involved at all
    # No DNS credentials for a server of one's own (it runs without subdomains), and its
    # host key is not replaced: it never travelled in user data.
    assert "DNS credentials" not in first.stdout and "DIGITALOCEAN_DNS_TOKEN" not in first.stdout
    assert "replaced" not in first.stdout

    second = run(*ssh_args(server, hub, remote_dir))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "pinned its host key" not in second.stdout

    # Same address, another key: refused before anything is uploaded.
    server.stop()
    impostor_key = tmp_path / "impostor"
    keygen(impostor_key, "impostor")
    servers.sshd(impostor_key, server.port)
    (remote_dir / "setup-node.sh").write_text("# untouched\n")
    third = run(*ssh_args(server, hub, remote_dir))
    assert_one_error_line(third, "host key mismatch", fingerprint(Path(f"{impostor_key}.pub")),
                          expected)
    assert (remote_dir / "setup-node.sh").read_text() == "# untouched\n"


def test_known_hosts_file_instead_of_first_use(run, server: Sshd, server_key: Path, hub,
                                               remote_dir: Path, tmp_path: Path):
    public = Path(f"{server_key}.pub").read_text().split()
    trusted = tmp_path / "known_hosts"
    trusted.write_text(f"[127.0.0.1]:{server.port} {public[0]} {public[1]}\n")
    ok = run(*ssh_args(server, hub, remote_dir, "--known-hosts", str(trusted)))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert not (tmp_path / "state" / "known_hosts").exists()

    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{free_port()} {public[0]} {public[1]}\n")
    refused = run(*ssh_args(server, hub, remote_dir, "--known-hosts", str(other)))
    assert_one_error_line(refused, "no key is pinned", "refusing")


def test_users_file_is_uploaded_private(run, server: Sshd, hub, remote_dir: Path,
                                        tmp_path: Path):
    users = tmp_path / "my-users.txt"
    users.write_text("alice:wonderland\n[instructors]\nteacher:secret\n")
    result = run(*ssh_args(server, hub, remote_dir, "--users", str(users)))
    assert result.returncode == 0, result.stdout + result.stderr
    uploaded = remote_dir / "etc" / "jupyterhub" / "users.txt"
    assert uploaded.read_text() == users.read_text()
    assert stat.S_IMODE(uploaded.stat().st_mode) == 0o600
    assert "(mode 0600)" in result.stdout


def test_upload_keeps_data_on_the_node(run, server: Sshd, hub, remote_dir: Path):
    # Participants' files on the node survive a re-run: nothing is deleted or chmod-ed.
    (remote_dir / "home" / "alice").mkdir(parents=True)
    (remote_dir / "home" / "alice").chmod(0o700)
    (remote_dir / "home" / "alice" / "notes.ipynb").write_text("{}")
    (remote_dir / "etc" / "jupyterhub").mkdir(parents=True)
    (remote_dir / "etc" / "jupyterhub" / "users.txt").write_text("bob:x\n")
    result = run(*ssh_args(server, hub, remote_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (remote_dir / "home" / "alice" / "notes.ipynb").read_text() == "{}"
    assert stat.S_IMODE((remote_dir / "home" / "alice").stat().st_mode) == 0o700
    assert (remote_dir / "etc" / "jupyterhub" / "users.txt").read_text() == "bob:x\n"
    assert os_mode(remote_dir / "setup-node.sh") & 0o111  # executable bit preserved


def os_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_login_refused(run, servers, server_key: Path, hub, remote_dir: Path, tmp_path: Path):
    stranger = tmp_path / "stranger"
    keygen(stranger, "stranger")
    server = servers.sshd(server_key)
    result = run(*ssh_args(server, hub, remote_dir), ssh_key=stranger)
    assert_one_error_line(result, "SSH login as root@", "was refused")


def test_nothing_listening(run, hub, remote_dir: Path):
    port = free_port()
    result = run("--hostname", FQDN, "--ssh", f"root@127.0.0.1:{port}", "--remote-dir",
                 str(remote_dir), "--ssh-timeout", "2")
    assert_one_error_line(result, f"SSH on [127.0.0.1]:{port} did not answer within 2s")


def test_setup_failure_reports_step(run, server: Sshd, hub, remote_dir: Path):
    args = ssh_args(server, hub, remote_dir)
    args[args.index("check")] = "nosuchstep"
    result = run(*args)
    assert result.returncode == 2
    first, *tail = result.stderr.strip().splitlines()
    assert first.startswith("create-node: error: setup-node.sh failed at step nosuchstep "
                            "(exit 2)")
    assert tail and tail[-1].strip() == "setup-node: FAILED at step nosuchstep"


def test_no_tls_checks_plain_http(run, server: Sshd, ca, tmp_path: Path, remote_dir: Path):
    plain = HubHealth(ca, tmp_path, [FQDN], tls=False).start()
    try:
        result = run(*ssh_args(server, plain, remote_dir, "--no-tls"))
    finally:
        plain.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"http://{FQDN}:{plain.port}/hub/health answered 200" in result.stdout
    assert f"ready: http://{FQDN}/" in result.stdout


def test_dry_run_connects_nowhere(run, hub, remote_dir: Path, tmp_path: Path):
    result = run("--hostname", FQDN, "--ssh", f"root@127.0.0.1:{free_port()}",
                 "--remote-dir", str(remote_dir), "--dry-run", "--email", "t@example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"would run: bash {remote_dir}/setup-node.sh {FQDN} --email t@example.org\n" in \
        result.stdout  # and no --dns-credentials
    assert not remote_dir.exists() and not (tmp_path / "state").exists()


def test_passphrase_protected_key_through_ssh_agent(run, servers, server_key: Path, hub,
                                                    remote_dir: Path, tmp_path: Path):
    key = tmp_path / "id_locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a long passphrase", "-f",
                    str(key)], check=True)
    servers.authorized_key = Path(f"{key}.pub").read_text().strip()
    server = servers.sshd(server_key)
    args = ssh_args(server, hub, remote_dir)

    without_agent = run(*args, ssh_key=key)
    assert_one_error_line(without_agent, "passphrase-protected", "ssh-agent")

    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        askpass = tmp_path / "askpass"
        askpass.write_text("#!/bin/sh\necho 'a long passphrase'\n")
        askpass.chmod(0o700)
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        add_env = {"SSH_AUTH_SOCK": str(socket_path), "SSH_ASKPASS": str(askpass),
                   "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0", "PATH": "/usr/bin:/bin"}
        subprocess.run(["ssh-add", str(key)], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL, env=add_env)
        with_agent = run(*args, ssh_key=key, env={"SSH_AUTH_SOCK": str(socket_path)})
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert with_agent.returncode == 0, with_agent.stdout + with_agent.stderr
    assert "node| ==> [check]" in with_agent.stdout
