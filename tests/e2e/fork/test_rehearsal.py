"""rehearse.py against the test stack: ten throw-away participants rehearse a class; the
report has every figure, and afterwards nothing of theirs is left while nobody else's
account, server or file was touched."""

from __future__ import annotations

import contextlib
import io
import json

from rehearse import main as rehearse_main
from tests.e2e.compose_stack import Stack
from tests.e2e.fork.conftest import ADDRESSES, processes
from tests.e2e.hubclient import HubSession

FIGURES = {"first", "median", "p95", "last", "all", "failures"}


def test_a_rehearsal_of_ten_reports_and_leaves_nothing_behind(stack: Stack, alice: HubSession):
    users_before = stack.users_file.read_bytes()
    homes_before = sorted(p.name for p in stack.home.iterdir())
    alice_files = sorted(p.name for p in (stack.home / "alice").iterdir())
    container = stack.compose("ps", "-q", "hub").stdout.strip()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = rehearse_main(["--local", "--container", container, "--url",
                              ADDRESSES.public_url, "--participants", "10", "--json"])
    report = json.loads(out.getvalue())
    print(json.dumps(report, indent=1))
    assert code == (0 if report["holds"] else 1)
    assert report["participants"] == 10
    assert set(report["servers"]) == FIGURES and set(report["first_cell"]) == FIGURES
    assert report["servers"]["failures"] == report["first_cell"]["failures"] == 0
    assert report["failures"] == [] and report["work"]["failures"] == 0
    assert 0 < report["servers"]["first"] <= report["servers"]["median"] \
        <= report["servers"]["last"]
    memory = report["memory"]
    assert 10 < memory["pss_per_participant_mb"] <= memory["rss_per_participant_mb"] < 2000
    assert memory["node_total_mb"] > memory["node_available_mb"] > 0
    assert set(report["goals"]) == {"last server ready s", "first server ready s",
                                    "median server ready s", "first cell p95 s"}
    assert all(set(g) == {"value", "goal", "met"} for g in report["goals"].values())
    assert report["holds"] is True and report["fits"] in ("small", "medium", "large")
    assert report["verdict"].startswith("holds the class")
    # Nothing of theirs is left: not in users.txt (byte for byte as before), no account,
    # no home, no process.
    assert stack.users_file.read_bytes() == users_before
    assert sorted(p.name for p in stack.home.iterdir()) == homes_before
    assert "rehearsal-" not in stack.exec("cat", "/etc/passwd").stdout
    known = {str(stack.uid_of(name)) for name in homes_before}
    strays = [p for p in processes(stack) if int(p["uid"][0]) >= 2000
              and p["uid"][0] not in known]
    assert not strays, strays
    # Nobody else was touched: alice's server still runs, her files are hers as before.
    assert alice.user_model()["servers"][""]["ready"] is True
    assert alice.server_api("GET", "/status").status_code == 200
    assert sorted(p.name for p in (stack.home / "alice").iterdir()) == alice_files


def test_over_ssh_only_the_pinned_node_is_rehearsed(stack: Stack, tmp_path):
    """--ssh: the node's side runs through SSH, trusting only the host key create-node.py
    pinned; a node whose key is not pinned is refused before anything happens there."""
    import paramiko

    from provision.hostkeys import HostKeyStore, host_entry
    from tests.fakes.sshd import Sshd, keygen

    user_key, server_key = tmp_path / "id_ed25519", tmp_path / "host_key"
    keygen(server_key, "node")
    sshd = Sshd(tmp_path / "sshd", keygen(user_key, "laptop")).start(server_key)
    container = stack.compose("ps", "-q", "hub").stdout.strip()
    args = ["--ssh", f"root@127.0.0.1:{sshd.port}", "--url", ADDRESSES.public_url,
            "--container", container, "--participants", "3", "--ssh-key", str(user_key),
            "--json"]
    users_before = stack.users_file.read_bytes()
    try:
        refused = io.StringIO()
        with contextlib.redirect_stderr(refused):
            assert rehearse_main([*args, "--state-dir", str(tmp_path / "empty")]) == 2
        assert "host key" in refused.getvalue() or "not the one" in refused.getvalue(), \
            refused.getvalue()
        assert stack.users_file.read_bytes() == users_before  # nothing was added

        store = HostKeyStore(tmp_path / "state")
        store.pin_server_key(host_entry("127.0.0.1", sshd.port),
                             paramiko.Ed25519Key.from_private_key_file(str(server_key)))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = rehearse_main([*args, "--state-dir", str(tmp_path / "state")])
        report = json.loads(out.getvalue())
        assert code == 0 and report["participants"] == 3 and report["failures"] == []
    finally:
        sshd.stop()
    assert stack.users_file.read_bytes() == users_before
