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
import requests
from playwright.sync_api import Page, expect

from tests.e2e.appliance.conftest import ADDRESSES, DASHBOARD, step_in
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
    out = alice.run(f"import subprocess; print(subprocess.run(['jupyter', 'trust', {EVIL!r}], "
                    "capture_output=True, text=True).stdout)")
    assert "Signing notebook" in out, out
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
    lab = step_in(instructor, link)
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
def test_participants_cannot_take_the_ports_of_hub_proxy_and_dashboard(alice: HubSession):
    ports = sorted(ADDRESSES.internal_ports())
    spare = ports[-1] + 1  # a free port in the same range: refused for being below 1024
    out = alice.run(
        "import errno, socket\n"
        f"for port in {[*ports, spare]!r}:\n"
        "    for host in ('127.0.0.1', '0.0.0.0'):\n"
        "        s = socket.socket()\n"
        "        try:\n"
        "            s.bind((host, port)); print(port, host, 'BOUND')\n"
        "        except OSError as e:\n"
        "            print(port, host, errno.errorcode[e.errno])\n"
        "        finally:\n"
        "            s.close()\n")
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
    assert alice.run(probe).startswith("reached")  # the path exists without the wall
    env = {**os.environ, "WORKSHOP_FW_CHAIN": "WSE2E", "WORKSHOP_METADATA_ADDR": address}
    subprocess.run(["bash", str(ROOT / "etc/firewall/workshop-firewall.sh"), "apply"], env=env,
                   check=True, capture_output=True)
    assert alice.run(probe).strip() == "refused ConnectionRefusedError"
    # The hub, running as root, still reaches it: only participants are walled off.
    with socket.create_connection((address, port), 3) as s:
        assert b"user-data" in s.recv(100)


# -- people ---------------------------------------------------------------------------------
def test_removing_a_participant_ends_every_process_of_theirs(stack: Stack):
    before = stack.users_file.read_text()
    stack.write_users(before + "[participants]\ndave:dave-pw\n")
    within(10, lambda: HubSession("dave").can_login("dave-pw"), "dave can log in")
    dave = HubSession("dave")
    dave.login("dave-pw")
    dave.spawn()
    dave.open_lab()
    dave.run("import subprocess\n"
                     "subprocess.Popen(['setsid', 'sleep', '1000'])\n"
                     "subprocess.Popen(['nohup', 'sleep', '1001'], start_new_session=True)\n")
    assert "sleep 1000" in stack.exec("pgrep", "-a", "-u", "dave", check=False).stdout
    stack.write_users(before)
    took = within(10, lambda: stack.exec("pgrep", "-u", "dave", check=False).returncode == 1,
                  "every process of dave is gone")
    print(f"\ndave's processes gone {took:.1f}s after the users.txt save")
    assert took <= 5.0 + 1.0  # users-sync polls every second and lets an edit settle
    assert (stack.home / "dave").is_dir()  # the files stay


def test_reserved_usernames_are_skipped_with_their_line_and_the_rest_works(stack: Stack):
    from workshop.reserved import RESERVED_NAMES

    before = stack.users_file.read_text()
    reserved = sorted(RESERVED_NAMES)
    first = len(before.splitlines()) + 2  # after the section header below
    stack.write_users(before + "[participants]\n"
                      + "".join(f"{name}:pw-{i}\n" for i, name in enumerate(reserved)))
    try:
        def all_reported() -> bool:
            log = stack.logs()
            # Names outside the username pattern (`_apt`) are refused as such already.
            return all(f"users.txt line {first + i}: username {name!r} is reserved" in log
                       or f"users.txt line {first + i}: invalid username {name!r}" in log
                       for i, name in enumerate(reserved))

        within(15, all_reported, "every reserved name reported with its line number")
        assert HubSession("alice").can_login("alice-pw")
        assert not HubSession("sudo").can_login("pw-" + str(reserved.index("sudo")))
        assert "Traceback" not in stack.logs().split("users.txt line")[-1]
        for name in ("staff", "sudo", "docker", "users", "shadow"):  # none became a user
            entry = stack.exec("getent", "passwd", name, check=False).stdout.split(":")
            assert len(entry) < 3 or int(entry[2]) < 2000, entry
    finally:
        stack.write_users(before)


def test_a_flood_of_wrong_passwords_does_not_stall_the_class(
        stack: Stack, teacher: HubSession, newcomer: HubSession):
    """20 wrong-password logins a second for 10 s against bob (a bcrypt account): the hub
    and the board keep answering; the figures are printed."""
    stop = threading.Event()
    attempts: list[int] = []

    def flood() -> None:
        session = requests.Session()
        form = session.get(ADDRESSES.hub("/hub/login"), timeout=10)
        xsrf = form.cookies.get("_xsrf") or ""
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = session.post(ADDRESSES.hub("/hub/login"), timeout=30,
                                 data={"username": "bob", "password": "wrong",
                                       "_xsrf": xsrf}, allow_redirects=False)
                attempts.append(r.status_code)
            except requests.RequestException:
                attempts.append(0)
            stop.wait(max(0.0, 0.2 - (time.monotonic() - started)))  # 5/s per thread

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    hub, board, spawn = [], [], None
    auth = {"Authorization": f"token {teacher.new_token()}"}
    for t in threads:
        t.start()
    # The newcomer presses Start while the flood runs (the hub answers that request
    # only once the start is done or slow: in a thread of its own, like a browser tab).
    pressed = threading.Thread(
        target=lambda: newcomer.hub_api("POST", f"/users/{newcomer.name}/server"), daemon=True)
    try:
        started = time.monotonic()
        pressed.start()
        while time.monotonic() - started < 10:
            t0 = time.monotonic()
            assert teacher.hub_api("GET", "/users/alice").status_code == 200
            hub.append(time.monotonic() - t0)
            t0 = time.monotonic()
            r = requests.get(f"{DASHBOARD}/api/index", timeout=10, headers=auth)
            board.append(time.monotonic() - t0)
            assert r.status_code == 200
            server = newcomer.user_model().get("servers", {}).get("")
            if spawn is None and server and server.get("ready"):
                spawn = time.monotonic() - started
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(40)
        pressed.join(60)
    if spawn is None:  # not within the flood's 10 s: how long it took at all
        within(30, lambda: (newcomer.user_model().get("servers", {}).get("") or {}).get("ready"),
               "the newcomer's server starts")
        spawn = time.monotonic() - started
    print(f"\nflood: {len(attempts)} wrong logins in 10 s "
          f"({sum(a == 429 for a in attempts)} refused as too many); hub API max "
          f"{max(hub):.2f}s, board max {max(board):.2f}s, a newcomer's spawn ready after {spawn}s")
    assert len(attempts) >= 100
    assert max(hub) < 1.0 and max(board) < 1.0
    assert spawn < 30


@pytest.fixture
def newcomer(stack: Stack) -> Iterator[HubSession]:
    """A participant who joins now, logged in, server not started; gone again after."""
    before = stack.users_file.read_text()
    stack.write_users(before + "[participants]\ngina:gina-pw\n")
    within(10, lambda: HubSession("gina").can_login("gina-pw"), "gina can log in")
    session = HubSession("gina")
    session.login("gina-pw")
    yield session
    stack.write_users(before)
    within(30, lambda: not HubSession("gina").can_login("gina-pw"), "gina is gone again")
