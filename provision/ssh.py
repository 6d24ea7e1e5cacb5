"""SSH with paramiko: connections with verified host keys, and commands run on the node.

Every connection verifies the server's host key against a pin (a key we
generated for the droplet, or one pinned on first use for --ssh); a different
key stops everything. Nothing here shells out to ssh. The instructor's key is
in provision/userkey.py, file transfers in provision/sftp.py.
"""

from __future__ import annotations

import codecs
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paramiko

from provision.backoff import Backoff, sleep
from provision.errors import ProvisionError, one_line
from provision.hostkeys import host_entry, sha256_fingerprint
from provision.progress import Progress

TAIL_LINES = 20
_STEP = re.compile(r"^==> \[(?P<step>[^\]]+)\]")
_FAILED = re.compile(r"^setup-node: FAILED at step (?P<step>\S+)")


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


class AnyOf(paramiko.MissingHostKeyPolicy):
    """Accepts exactly these keys: the pinned one and, while a host key rotation is
    unfinished, the next one (provision/rotation.py). Several keys of one type cannot
    share a known_hosts entry, hence a policy instead of pins."""

    def __init__(self, keys: Sequence[paramiko.PKey]) -> None:
        self.keys = list(keys)

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if not any(key.asbytes() == known.asbytes() for known in self.keys):
            raise paramiko.BadHostKeyException(hostname, key, self.keys[0])


@dataclass(frozen=True)
class Route:
    """How to reach the node over SSH and which host key it must present."""

    host: str
    port: int
    user: str
    pkey: paramiko.PKey | None  # None: a matching key in ssh-agent
    pinned: paramiko.HostKeys
    policy: paramiko.MissingHostKeyPolicy | None  # None: only pinned keys are accepted
    wait: Backoff
    mismatch_hint: str = ""
    # Seconds in which a wrong host key or a refused login is waited out (see connect).
    settle: float = 0.0
    settle_reason: str = "cloud-init may still be installing it"

    @property
    def name(self) -> str:
        return host_entry(self.host, self.port)


def presented_key(client: paramiko.SSHClient) -> paramiko.PKey:
    transport = client.get_transport()
    if transport is None:
        raise ProvisionError("the SSH connection closed unexpectedly")
    return transport.get_remote_server_key()


def connect(route: Route, progress: Progress) -> paramiko.SSHClient:
    """Connect once SSH answers, polling with backoff while the server boots.

    Refused connections, timeouts and half-started daemons are retried until
    the deadline. A wrong host key or a refused login fails at once, since
    waiting cannot fix either, except during the first `route.settle` seconds:
    an sshd that starts before cloud-init has installed our host key and the
    instructor's key briefly shows the image's own, and an sshd that is
    reloading may answer once more with its old key. We never go on with a
    wrong key; the grace only delays the verdict.
    """
    name = route.name
    reported = ""
    attempts = 0
    started = time.monotonic()
    delays = route.wait.delays()
    while True:
        attempts += 1
        fatal: ProvisionError | None = None
        try:
            client = _connect_once(route)
        except paramiko.BadHostKeyException as exc:
            fatal = ProvisionError(
                f"host key mismatch for {name}: it presented {sha256_fingerprint(exc.key)}, "
                f"pinned is {sha256_fingerprint(exc.expected_key)}; refusing to connect"
                + (f" ({route.mismatch_hint})" if route.mismatch_hint else ""))
            reason = (f"host key {sha256_fingerprint(exc.key)} is not the pinned one yet; "
                      f"{route.settle_reason}")
        except paramiko.AuthenticationException as exc:
            fatal = ProvisionError(
                f"SSH login as {route.user}@{name} was refused ({one_line(str(exc))}): is "
                "your key in the server's authorized_keys?")
            reason = "login refused; cloud-init may still be installing your key"
        except (OSError, EOFError, paramiko.SSHException) as exc:
            reason = one_line(str(exc)) or type(exc).__name__
        else:
            if attempts > 1:
                progress.say(f"SSH answered on {name} after {attempts} attempts")
            return client
        if fatal is not None and time.monotonic() - started >= route.settle:
            raise fatal
        delay = next(delays, None)
        if delay is None:
            raise fatal or ProvisionError(
                f"SSH on {name} did not answer within {route.wait.timeout:.0f}s: {reason}")
        reported = _report_wait(progress, name, reason, reported)
        sleep(delay)


def _connect_once(route: Route) -> paramiko.SSHClient:
    name = route.name
    client = paramiko.SSHClient()
    for key_type, key in (route.pinned.lookup(name) or {}).items():
        client.get_host_keys().add(name, key_type, key)
    client.set_missing_host_key_policy(route.policy or _NoPinPolicy())
    try:
        client.connect(
            route.host, port=route.port, username=route.user, pkey=route.pkey,
            allow_agent=route.pkey is None, look_for_keys=False, timeout=10,
            banner_timeout=15, auth_timeout=20,
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


@dataclass
class RunResult:
    status: int
    last_step: str | None
    failed_step: str | None
    tail: list[str]


def _exec(client: paramiko.SSHClient, command: str, closed: str) -> paramiko.Channel:
    """A session running `command`, stdout and stderr merged; `closed` says what failed."""
    transport = client.get_transport()
    if transport is None:
        raise ProvisionError(closed)
    channel = transport.open_session()
    channel.set_combine_stderr(True)
    channel.exec_command(command)
    return channel


def run_streaming(client: paramiko.SSHClient, command: str, progress: Progress) -> RunResult:
    """Run command on the node, echoing each output line with the elapsed time."""
    channel = _exec(client, command, "the SSH connection closed before setup could start")
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


def run_command(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    """Run a short command on the node; return its exit status and its output (merged)."""
    channel = _exec(client, command, "the SSH connection closed unexpectedly")
    output = bytearray()
    while chunk := channel.recv(32768):
        output += chunk
    status = channel.recv_exit_status()
    channel.close()
    return status, output.decode("utf-8", errors="replace")
