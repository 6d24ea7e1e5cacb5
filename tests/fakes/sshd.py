"""A real OpenSSH server on 127.0.0.1 for tests: own config, own host key, test's user key.

Started as `/usr/sbin/sshd -D -e -f <config>` and stopped by its PID. Root may
log in with the test's key only (PermitRootLogin prohibit-password), so
create-node.py's upload and setup-node.sh run against this machine, inside the
test's temporary directory. Like a droplet's sshd it reads its host key again on
SIGHUP (it re-executes itself by its absolute path, keeping its PID), which is
how create-node.py's host key rotation makes it present a new key.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path, comment: str = "test") -> str:
    """A new ed25519 key pair at path (no passphrase); returns the public key line."""
    path.unlink(missing_ok=True)
    Path(str(path) + ".pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                    str(path)], check=True)
    return Path(str(path) + ".pub").read_text().strip()


def fingerprint(public_path: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(public_path)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]  # "256 SHA256:... comment (ED25519)"


@dataclass
class Sshd:
    workdir: Path
    authorized_key: str
    port: int = field(default_factory=free_port)
    listen: str = "127.0.0.1"  # always a loopback address
    pid_file: Path | None = None  # default: sshd.pid in workdir
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def start(self, host_key: Path) -> Sshd:
        """Start serving with the private host key at host_key; waits until it answers."""
        assert self.listen.startswith("127."), "tests listen on loopback only"
        # OpenSSH insists on its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "authorized_keys").write_text(self.authorized_key + "\n")
        config = self.workdir / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            f"ListenAddress {self.listen}\n"
            f"HostKey {host_key}\n"
            f"PidFile {self.pid_file or self.workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "MaxStartups 50\n"
            f"Subsystem sftp {SFTP_SERVER}\n"
            "LogLevel VERBOSE\n"
        )
        host_key.chmod(0o600)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log,
                                        stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.listen, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not answer on port {self.port}")

    def presented_key(self) -> str:
        """The host key this sshd presents now, as "TYPE BASE64" (ssh-keyscan)."""
        out = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", str(self.port),
                              self.listen], capture_output=True, text=True, check=True).stdout
        (line,) = [x for x in out.splitlines() if x and not x.startswith("#")]
        return " ".join(line.split()[1:3])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
