"""SSH with paramiko: the instructor's key, verified host keys, SFTP upload, remote run.

Every connection verifies the server's host key against a pin (a key we
generated for the droplet, or one pinned on first use for --ssh); a different
key stops everything. Nothing here shells out to ssh.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import getpass
import hashlib
import posixpath
import re
import stat
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from provision.backoff import Backoff, sleep
from provision.errors import ProvisionError, one_line
from provision.hostkeys import host_entry, public_key_from_line, sha256_fingerprint
from provision.progress import Progress
from provision.upload import UploadItem

TAIL_LINES = 20
_STEP = re.compile(r"^==> \[(?P<step>[^\]]+)\]")
_FAILED = re.compile(r"^setup-node: FAILED at step (?P<step>\S+)")


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


class _NoPinPolicy(paramiko.MissingHostKeyPolicy):
    """Refuses every key we have no pin for (used when a pin must exist)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        raise ProvisionError(
            f"{hostname} presented host key {sha256_fingerprint(key)} and no key is pinned "
            "for it: refusing to connect"
        )


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accepts an unknown server's key and hands it to `pin` to remember it."""

    def __init__(self, pin: Callable[[str, paramiko.PKey], None]) -> None:
        self._pin = pin

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        self._pin(hostname, key)


def connect(
    host: str,
    port: int,
    user: str,
    pkey: paramiko.PKey | None,
    pinned: paramiko.HostKeys,
    policy: paramiko.MissingHostKeyPolicy | None,
    backoff: Backoff,
    progress: Progress,
    mismatch_hint: str = "",
    settle: float = 0.0,
) -> paramiko.SSHClient:
    """Connect once SSH answers, polling with backoff while the server boots.

    Refused connections, timeouts and half-started daemons are retried until
    the deadline. A wrong host key or a refused login fails at once, since
    waiting cannot fix either, except during the first `settle` seconds of a
    new droplet: an sshd that starts before cloud-init has installed our host
    key and the instructor's key briefly shows the image's own. We never go on
    with a wrong key; the grace only delays the verdict.
    """
    name = host_entry(host, port)
    reported = ""
    attempts = 0
    started = time.monotonic()
    delays = backoff.delays()
    while True:
        attempts += 1
        fatal: ProvisionError | None = None
        try:
            client = _connect_once(host, port, user, pkey, pinned, policy)
        except paramiko.BadHostKeyException as exc:
            fatal = ProvisionError(
                f"host key mismatch for {name}: it presented {sha256_fingerprint(exc.key)}, "
                f"pinned is {sha256_fingerprint(exc.expected_key)}; refusing to connect"
                + (f" ({mismatch_hint})" if mismatch_hint else ""))
            reason = (f"host key {sha256_fingerprint(exc.key)} is not the pinned one yet; "
                      "cloud-init may still be installing it")
        except paramiko.AuthenticationException as exc:
            fatal = ProvisionError(
                f"SSH login as {user}@{name} was refused ({one_line(str(exc))}): is your key "
                "in the server's authorized_keys?")
            reason = "login refused; cloud-init may still be installing your key"
        except (OSError, EOFError, paramiko.SSHException) as exc:
            reason = one_line(str(exc)) or type(exc).__name__
        else:
            if attempts > 1:
                progress.say(f"SSH answered on {name} after {attempts} attempts")
            return client
        if fatal is not None and time.monotonic() - started >= settle:
            raise fatal
        delay = next(delays, None)
        if delay is None:
            raise fatal or ProvisionError(
                f"SSH on {name} did not answer within {backoff.timeout:.0f}s: {reason}")
        reported = _report_wait(progress, name, reason, reported)
        sleep(delay)


def _connect_once(host: str, port: int, user: str, pkey: paramiko.PKey | None,
                  pinned: paramiko.HostKeys,
                  policy: paramiko.MissingHostKeyPolicy | None) -> paramiko.SSHClient:
    name = host_entry(host, port)
    client = paramiko.SSHClient()
    for key_type, key in (pinned.lookup(name) or {}).items():
        client.get_host_keys().add(name, key_type, key)
    client.set_missing_host_key_policy(policy or _NoPinPolicy())
    try:
        client.connect(
            host, port=port, username=user, pkey=pkey, allow_agent=pkey is None,
            look_for_keys=False, timeout=10, banner_timeout=15, auth_timeout=20,
        )
    except BaseException:
        client.close()
        raise
    transport = client.get_transport()
    if transport is not None:
        # setup-node.sh can be quiet for minutes (docker build); keepalives stop
        # NAT boxes from dropping the session.
        transport.set_keepalive(30)
    return client


def _report_wait(progress: Progress, name: str, reason: str, reported: str) -> str:
    """Say why we are still waiting, once per distinct reason."""
    if reason != reported:
        progress.say(f"waiting for SSH on {name} ({reason})")
    return reason


def _sftp_exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def upload(client: paramiko.SSHClient, items: Sequence[UploadItem], remote_dir: str) -> int:
    """Copy the selected files under remote_dir; return the number of bytes sent.

    Existing directories are left as they are (home/ and tmp/ hold data with
    their own owners and modes); files are overwritten and get their mode.
    """
    sent = 0
    with client.open_sftp() as sftp:
        # Create remote_dir and its parents (e.g. /opt) if needed.
        parts = [p for p in remote_dir.split("/") if p]
        for i in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:i])
            if not _sftp_exists(sftp, path):
                sftp.mkdir(path, 0o755)
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
            # Set the mode before any byte is written, so a 0600 file (users.txt)
            # is never readable by others on the node, not even half-written.
            with sftp.open(remote, "wb") as handle:
                handle.chmod(item.mode)
                handle.set_pipelined(True)
                handle.write(data)
            sent += len(data)
    return sent


@dataclass
class RunResult:
    status: int
    last_step: str | None
    failed_step: str | None
    tail: list[str]


def run_streaming(client: paramiko.SSHClient, command: str, progress: Progress) -> RunResult:
    """Run command on the node, echoing each output line with the elapsed time."""
    transport = client.get_transport()
    if transport is None:
        raise ProvisionError("the SSH connection closed before setup could start")
    channel = transport.open_session()
    channel.set_combine_stderr(True)
    channel.exec_command(command)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    result = RunResult(status=-1, last_step=None, failed_step=None, tail=[])
    pending = ""

    def emit(line: str) -> None:
        line = line.rstrip("\r")
        tail.append(line)
        if match := _STEP.match(line):
            result.last_step = match["step"]
        if match := _FAILED.match(line):
            result.failed_step = match["step"]
        progress.node(line)

    while True:
        chunk = channel.recv(32768)
        if not chunk:
            break
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            emit(line)
    pending += decoder.decode(b"", final=True)
    if pending:
        emit(pending)
    result.status = channel.recv_exit_status()
    result.tail = list(tail)
    channel.close()
    return result

