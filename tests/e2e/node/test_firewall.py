"""The node's firewall (etc/firewall/workshop-firewall.sh) with real iptables, on a node
of our own: two network namespaces made for the test, "node" and "outside", joined by a
veth pair on TEST-NET-1 (192.0.2.0/24, a documentation range that never leaves them).
Nothing here touches this machine's own rules."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.compose_stack import ROOT

SCRIPT = ROOT / "etc/firewall/workshop-firewall.sh"
NODE, OUTSIDE = "wsfw-node", "wsfw-outside"
NODE_IP, OUTSIDE_IP = "192.0.2.1", "192.0.2.2"
METADATA = "169.254.169.254"
PARTICIPANT = 2000  # the first uid participants get (services/workshop/accounts.py)
PYTHON = "/usr/bin/python3"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=check)


def in_ns(ns: str, *cmd: str, uid: int | None = None) -> list[str]:
    who = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"] if uid else []
    return ["ip", "netns", "exec", ns, *who, *cmd]


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    """Yields this machine's own rules as they were before (they must stay so)."""
    host_rules = sh("iptables-save").stdout
    for ns in (NODE, OUTSIDE):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
    started: list[subprocess.Popen[bytes]] = []
    try:
        sh("ip", "link", "add", "wsfw0", "type", "veth", "peer", "name", "wsfw1")
        sh("ip", "link", "set", "wsfw0", "netns", NODE)
        sh("ip", "link", "set", "wsfw1", "netns", OUTSIDE)
        for ns, dev, ip in ((NODE, "wsfw0", NODE_IP), (OUTSIDE, "wsfw1", OUTSIDE_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # The cloud's metadata service, simulated on the node itself.
        sh("ip", "-n", NODE, "addr", "add", f"{METADATA}/32", "dev", "lo")
        servers = [(NODE, NODE_IP, 80, None), (NODE, NODE_IP, 22, None),
                   (NODE, METADATA, 80, None),
                   # a participant's own listener on a public address of the node
                   (NODE, "0.0.0.0", 5555, PARTICIPANT),
                   (OUTSIDE, OUTSIDE_IP, 8080, None)]
        for ns, ip, port, uid in servers:
            started.append(subprocess.Popen(
                in_ns(ns, PYTHON, "-m", "http.server", str(port), "--bind", ip, uid=uid),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp"))
        time.sleep(1.5)
        result = sh(*in_ns(NODE, "bash", str(SCRIPT), "apply", "--inbound", "22,80,443"),
                    check=False)
        assert result.returncode == 0, result.stderr
        yield host_rules
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)
        for ns in (NODE, OUTSIDE):
            sh("ip", "netns", "del", ns, check=False)


def reaches(ns: str, ip: str, port: int, uid: int | None = None) -> str:
    """'ok', 'refused' or 'timeout' for a TCP connection from `ns` as `uid`."""
    code = ("import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(({ip!r}, {port}), 2); print('ok')\n"
            "except ConnectionRefusedError: print('refused')\n"
            "except OSError: print('timeout')\n")
    return sh(*in_ns(ns, PYTHON, "-c", code, uid=uid)).stdout.strip()


def test_from_outside_only_ssh_http_and_https_answer(node):
    assert reaches(OUTSIDE, NODE_IP, 80) == "ok"
    assert reaches(OUTSIDE, NODE_IP, 22) == "ok"
    # A participant's server or kernel listening on the node's public address: unreachable.
    assert reaches(OUTSIDE, NODE_IP, 5555) == "timeout"
    # ... while on the node itself (the proxy reaching servers) loopback stays open.
    assert reaches(NODE, "127.0.0.1", 5555) == "ok"


def test_participants_cannot_reach_the_metadata_service(node):
    assert reaches(NODE, METADATA, 80, uid=PARTICIPANT) == "refused"
    assert reaches(NODE, METADATA, 80) == "ok"  # root (the node's own tools) still can
    # The rest of the world stays reachable for participants (pip, data sets).
    assert reaches(NODE, OUTSIDE_IP, 8080, uid=PARTICIPANT) == "ok"


def test_applying_again_changes_nothing_and_remove_takes_everything_out(node):
    def rules() -> str:
        return sh(*in_ns(NODE, "iptables-save")).stdout

    def ours(text: str) -> list[str]:
        return sorted(line for line in text.splitlines() if "WORKSHOP" in line)

    before = ours(rules())
    sh(*in_ns(NODE, "bash", str(SCRIPT), "apply", "--inbound", "22,80,443"))
    assert ours(rules()) == before and before
    status = sh(*in_ns(NODE, "bash", str(SCRIPT), "status")).stdout
    assert "cannot reach 169.254.169.254" in status and "inbound only on TCP 22,80,443" in status
    sh(*in_ns(NODE, "bash", str(SCRIPT), "remove"))
    assert ours(rules()) == []
    assert reaches(OUTSIDE, NODE_IP, 5555) == "ok"
    sh(*in_ns(NODE, "bash", str(SCRIPT), "apply", "--inbound", "22,80,443"))


def test_bad_ports_are_one_clear_line():
    result = sh("bash", str(SCRIPT), "apply", "--inbound", "22;reboot", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("workshop-firewall: --inbound 22;reboot: expected ports "
                                     "like 22,80,443")


def test_this_machines_own_rules_are_untouched(node):
    def rules(text: str) -> list[str]:  # without iptables-save's comments and counters
        return [line.split(" [")[0] for line in text.splitlines() if not line.startswith("#")]

    assert rules(sh("iptables-save").stdout) == rules(node)
