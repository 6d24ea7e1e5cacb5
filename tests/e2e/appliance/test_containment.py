"""Participants are untrusted: what one of them plants or runs cannot act as an
instructor, take the hub's ports, or reach the node's metadata (issue 12)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.appliance.conftest import ADDRESSES, DASHBOARD
from tests.e2e.compose_stack import ROOT, Stack
from tests.e2e.hubclient import HubSession, within

EVIL = "evil.ipynb"
# What a participant's planted JavaScript tries once it runs in an instructor's browser:
# add an instructor through the dashboard's form, read the form's CSRF token, create a
# user through the hub's API with the instructor's cookies. It reports what happened
# into its own server (same origin, so that part works), where the test reads it.
ATTACK = f"""
(async () => {{
  const out = {{}};
  const dash = {json.dumps(ADDRESSES.service("dashboard"))};
  const hub = {json.dumps(ADDRESSES.hub("/hub/api/"))};
  const attempt = async (name, url, init) => {{
    try {{
      const r = await fetch(url, {{credentials: "include", ...init}});
      out[name] = r.type + " " + r.status + " " + (await r.text()).slice(0, 200);
    }} catch (e) {{ out[name] = "blocked: " + e; }}
  }};
  await attempt("form", dash + "users", {{method: "POST",
    body: new URLSearchParams({{name: "mallory", password: "mallory-pw", instructor: "on"}})}});
  await attempt("read", dash + "users", {{}});
  await attempt("api", hub + "users/mallory", {{method: "POST"}});
  const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
  await fetch(location.pathname.split("/lab")[0] + "/api/contents/attack.json", {{
    method: "PUT", headers: {{"X-XSRFToken": xsrf, "Content-Type": "application/json"}},
    body: JSON.stringify({{type: "file", format: "text", content: JSON.stringify(out)}})}});
}})();
"""


def evil_notebook() -> list[dict]:
    return [{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "show()",
             "outputs": [{"output_type": "display_data", "metadata": {},
                          "data": {"text/html": f"<b>hello</b><script>{ATTACK}</script>",
                                   "text/plain": "hello"}}]}]


def read_report(path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there, or still being written
        return None


def nobody_called_mallory(stack: Stack, teacher: HubSession) -> None:
    assert "mallory" not in stack.users_file.read_text()
    assert teacher.hub_api("GET", "/users/mallory").status_code == 404
    assert not HubSession("mallory").can_login("mallory-pw")


@pytest.fixture(scope="module")
def teacher() -> HubSession:
    from tests.e2e.appliance.conftest import PASSWORDS

    session = HubSession("teacher")
    session.login(PASSWORDS["teacher"])
    return session


def test_planted_script_runs_only_on_the_participants_origin(
        stack: Stack, instructor: Page, alice: HubSession, teacher: HubSession):
    assert alice.save_notebook(EVIL, evil_notebook()).status_code in (200, 201)
    # alice trusts her own notebook with her own signing secret, as she may: JupyterLab
    # then runs its scripts for whoever opens it in her server.
    kernel = alice.start_kernel()
    try:
        out = kernel.execute(f"import subprocess; print(subprocess.run(['jupyter', 'trust', "
                             f"{EVIL!r}], capture_output=True, text=True).stdout)")
        assert "Signing notebook" in out["stdout"], out
    finally:
        kernel.close()
    report = stack.home / "alice" / "attack.json"
    report.unlink(missing_ok=True)

    # The instructor merely watches the board and alice's rendered notebook: nothing runs.
    instructor.goto(f"{DASHBOARD}/")
    row = instructor.locator('tr[data-user="alice"]')
    expect(row.locator(f'td[data-path="{EVIL}"] a.view')).to_be_visible(timeout=15000)
    row.locator(f'td[data-path="{EVIL}"] a.view').click()
    instructor.wait_for_load_state("networkidle")
    time.sleep(2)
    assert not report.exists()

    # The instructor steps into alice's server: her script runs, on her origin only.
    instructor.goto(f"{DASHBOARD}/")
    link = row.locator(f'td[data-path="{EVIL}"] a.open')
    expect(link).to_be_visible(timeout=15000)
    assert link.get_attribute("href").startswith(ADDRESSES.user("alice"))
    with instructor.context.expect_page() as opened:
        link.click()
    lab = opened.value
    lab.wait_for_load_state()
    if "/hub/api/oauth2/authorize" in lab.url:
        lab.click("button[type=submit]")
    try:
        within(60, lambda: read_report(report), "alice's script ran in the instructor's browser")
    finally:
        lab.close()
    attempts = read_report(report)
    assert not attempts["form"].startswith(("basic 20", "cors 20")), attempts
    assert not attempts["read"].startswith(("basic 200", "cors 200")), attempts
    assert "csrf" not in attempts["read"].lower()
    assert not attempts["api"].startswith(("basic 20", "cors 20")), attempts
    nobody_called_mallory(stack, teacher)


# -- the node's network, from a participant's kernel --------------------------------------
def kernel_run(session: HubSession, code: str) -> str:
    kernel = session.start_kernel()
    try:
        out = kernel.execute(code)
    finally:
        kernel.close()
    assert not out["error"], out
    return out["stdout"]


def test_participants_cannot_take_the_ports_of_hub_proxy_and_dashboard(alice: HubSession):
    ports = sorted(ADDRESSES.internal_ports())
    spare = ports[-1] + 1  # a free port in the same range: refused for being below 1024
    out = kernel_run(alice, (
        "import errno, socket\n"
        f"for port in {[*ports, spare]!r}:\n"
        "    for host in ('127.0.0.1', '0.0.0.0'):\n"
        "        s = socket.socket()\n"
        "        try:\n"
        "            s.bind((host, port)); print(port, host, 'BOUND')\n"
        "        except OSError as e:\n"
        "            print(port, host, errno.errorcode[e.errno])\n"
        "        finally:\n"
        "            s.close()\n"))
    results = [line.split() for line in out.splitlines()]
    assert len(results) == 2 * (len(ports) + 1)
    assert all(result[2] == "EACCES" for result in results), out


@pytest.fixture
def fake_metadata() -> Iterator[tuple[str, int]]:
    """A stand-in for the cloud's metadata service on an address of the test's own, and
    the participants' firewall rules pointed at it (through the variable the rule reads),
    in a chain of the test's own so no rule of this machine's is touched."""
    address = "127.0.0.9"
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, 0))
    server.listen(16)
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nuser-data: host private key\n")
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    env = {**os.environ, "WORKSHOP_FW_CHAIN": "WSE2E", "WORKSHOP_METADATA_ADDR": address}
    script = str(ROOT / "etc/firewall/workshop-firewall.sh")
    try:
        yield address, server.getsockname()[1]
    finally:
        subprocess.run(["bash", script, "remove"], env=env, check=False, capture_output=True)
        stop.set()
        thread.join(5)
        server.close()


def test_participants_cannot_reach_the_metadata_address(alice: HubSession, fake_metadata):
    address, port = fake_metadata
    probe = ("import socket\n"
             "try:\n"
             f"    s = socket.create_connection(({address!r}, {port}), 3)\n"
             "    print('reached', s.recv(100))\n"
             "except OSError as e:\n"
             "    print('refused', type(e).__name__)\n")
    assert kernel_run(alice, probe).startswith("reached")  # the path exists without the wall
    env = {**os.environ, "WORKSHOP_FW_CHAIN": "WSE2E", "WORKSHOP_METADATA_ADDR": address}
    subprocess.run(["bash", str(ROOT / "etc/firewall/workshop-firewall.sh"), "apply"], env=env,
                   check=True, capture_output=True)
    assert kernel_run(alice, probe).strip() == "refused ConnectionRefusedError"
    # The hub, running as root, still reaches it: only participants are walled off.
    with socket.create_connection((address, port), 3) as s:
        assert b"user-data" in s.recv(100)
