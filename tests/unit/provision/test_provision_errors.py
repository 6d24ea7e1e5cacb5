"""Error lines: one line, prefixed, secrets removed; the run's output parsing."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import pytest

from provision.backoff import Backoff
from provision.digitalocean import Droplet
from provision.errors import REDACT, ProvisionError, Redactor, one_line, report
from provision.progress import Progress
from provision.ssh import run_streaming
from provision.userkey import UserKey, load_private_key, read_user_key


def test_report_is_one_prefixed_line_with_details_after():
    out = io.StringIO()
    report(ProvisionError("first\n  second part\n", details=["    tail 1", "    tail 2"]), out)
    assert out.getvalue().splitlines() == ["create-node: error: first second part",
                                           "    tail 1", "    tail 2"]


def test_redactor_removes_every_registered_secret():
    redact = Redactor()
    redact.add("dop_v1_0123456789abcdef")
    redact.add("short")  # too short to be a token: would mangle ordinary words
    redact.add(None)
    assert redact("Bearer dop_v1_0123456789abcdef, short") == "Bearer [redacted], short"


def test_report_and_progress_redact():
    secret = "dop_v1_SECRETSECRETSECRET"
    REDACT.add(secret)
    out = io.StringIO()
    report(ProvisionError(f"the API said {secret}", details=[secret]), out)
    Progress(out).say(f"token {secret}")
    assert secret not in out.getvalue() and out.getvalue().count("[redacted]") == 3


def test_one_line():
    assert one_line("a\n\n  b \n") == "a b"


def test_progress_prefix_shows_elapsed_seconds():
    out = io.StringIO()
    progress = Progress(out)
    progress.say("droplet lab created (id 1)")
    progress.node("==> [check] ok")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[   0.0s] droplet lab created")
    assert lines[1].endswith("node| ==> [check] ok")


def test_backoff_grows_is_capped_and_stops_at_the_deadline():
    delays = list(Backoff(first=0.01, factor=2, maximum=0.04, timeout=0.0).delays())
    assert delays == []
    gen = Backoff(first=0.01, factor=2, maximum=0.04, timeout=60).delays()
    assert [round(next(gen), 3) for _ in range(5)] == [0.01, 0.02, 0.04, 0.04, 0.04]
    short = Backoff(first=10, factor=2, maximum=10, timeout=0.05).delays()
    assert next(short) <= 0.05  # never sleeps past the deadline
    time.sleep(0.06)
    assert next(short, None) is None


def test_droplet_public_address_is_the_public_v4():
    droplet = Droplet.from_api({"id": 7, "name": "lab", "status": "active", "tags": ["t"],
                                "networks": {"v4": [
                                    {"ip_address": "10.0.0.2", "type": "private"},
                                    {"ip_address": "203.0.113.4", "type": "public"}]}})
    assert (droplet.id, droplet.ipv4) == (7, "203.0.113.4")
    booting = Droplet.from_api({"id": 8, "name": "lab", "status": "new",
                                "networks": {"v4": [], "v6": []}})
    assert booting.ipv4 is None


def test_md5_fingerprint_matches_ssh_keygen(tmp_path: Path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    expected = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(key)], check=True,
                              capture_output=True, text=True).stdout.split()[1]
    assert "MD5:" + read_user_key(key).md5_fingerprint == expected
    # Without the .pub file the public key is derived from the private one.
    Path(f"{key}.pub").unlink()
    assert "MD5:" + read_user_key(key).md5_fingerprint == expected


def test_missing_or_broken_keys(tmp_path: Path):
    with pytest.raises(ProvisionError, match="not found"):
        read_user_key(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.write_text("not a key")
    with pytest.raises(ProvisionError, match="cannot read SSH key"):
        read_user_key(broken)
    public = tmp_path / "id_ed25519.pub"
    public.write_text("ssh-ed25519 AAAA x")
    with pytest.raises(ProvisionError, match="is a public key"):
        read_user_key(public)
    assert isinstance(UserKey(broken, "ssh-ed25519 AAAA x"), UserKey)


class FakeChannel:
    """Just enough of paramiko's Channel for run_streaming."""

    def __init__(self, chunks: list[bytes], status: int) -> None:
        self.chunks, self.status, self.command = list(chunks), status, ""

    def set_combine_stderr(self, combine: bool) -> None:
        assert combine

    def exec_command(self, command: str) -> None:
        self.command = command

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def recv_exit_status(self) -> int:
        return self.status

    def close(self) -> None:
        pass


class FakeClient:
    def __init__(self, channel: FakeChannel) -> None:
        self.channel = channel

    def get_transport(self):
        return self

    def open_session(self) -> FakeChannel:
        return self.channel


def test_run_streaming_tracks_steps_and_keeps_the_tail():
    output = ("==> [packages] apt\n" + "".join(f"line {i}\n" for i in range(30))
              + "==> [tls] certbot\nboom: caf\u00e9\nsetup-node: FAILED at step tls\n").encode()
    # Chunks split in the middle of lines and of a UTF-8 character.
    cut = output.index(b"caf") + 4
    channel = FakeChannel([output[:7], output[7:cut], output[cut:]], status=2)
    out = io.StringIO()
    result = run_streaming(FakeClient(channel), "bash setup-node.sh lab.x.org",  # type: ignore
                           Progress(out))
    assert channel.command == "bash setup-node.sh lab.x.org"
    assert (result.status, result.last_step, result.failed_step) == (2, "tls", "tls")
    assert len(result.tail) == 20 and result.tail[-1] == "setup-node: FAILED at step tls"
    assert "boom: caf\u00e9" in result.tail
    assert sum(1 for line in out.getvalue().splitlines() if "node| " in line) == 34


def test_run_streaming_last_line_without_newline():
    channel = FakeChannel([b"==> [check] ok\npartial"], status=0)
    result = run_streaming(FakeClient(channel), "x", Progress(io.StringIO()))  # type: ignore
    assert result.tail == ["==> [check] ok", "partial"] and result.failed_step is None


@pytest.mark.parametrize("key_format", ["openssh-ed25519", "pem-rsa"])
def test_passphrase_protected_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   key_format: str):
    key = tmp_path / "id"
    kind = ["-t", "ed25519"] if key_format == "openssh-ed25519" else \
        ["-t", "rsa", "-b", "2048", "-m", "PEM"]
    subprocess.run(["ssh-keygen", "-q", *kind, "-N", "a passphrase", "-f", str(key)],
                   check=True)
    user_key = read_user_key(key)  # the .pub file is enough to know the public key
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: cannot ask
    with pytest.raises(ProvisionError, match="passphrase-protected: add it to ssh-agent"):
        load_private_key(user_key)
    Path(f"{key}.pub").unlink()
    with pytest.raises(ProvisionError, match=r"passphrase-protected and .*\.pub is missing"):
        read_user_key(key)
