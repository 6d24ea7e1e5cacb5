"""users.txt edits apply within 5 s while the hub runs, and nobody else's kernel notices."""

from __future__ import annotations

import requests

from tests.e2e.appliance.conftest import BROKEN_LINE, EVENTS, PASSWORDS, USERS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within

LIVE_WITHIN = 5.0


def test_malformed_line_is_reported_with_its_number(stack: Stack):
    log = stack.logs()
    assert f"users.txt line {BROKEN_LINE}: expected 'username:password'" in log
    # ...and every other line still works.
    assert HubSession("erin").can_login(PASSWORDS["erin"])


def test_users_txt_edits_apply_live_without_touching_running_kernels(
        stack: Stack, alice: HubSession, bob: HubSession):
    kernel = alice.start_kernel()
    try:
        assert kernel.execute("x = 42; print(x)")["stdout"].strip() == "42"

        # A new participant can log in within 5 s of the save.
        stack.write_users(USERS + "[participants]\ncarol:carol-pw\n")
        took = within(LIVE_WITHIN, lambda: HubSession("carol").can_login("carol-pw"))
        print(f"new user could log in after {took:.2f}s")
        assert kernel.execute("print(x)")["stdout"].strip() == "42"

        # A changed password applies; the old one stops working.
        text = USERS.replace("erin:erin-pw", "erin:erin-new") + "[participants]\ncarol:carol-pw\n"
        stack.write_users(text)
        within(LIVE_WITHIN, lambda: HubSession("erin").can_login("erin-new"))
        assert not HubSession("erin").can_login("erin-pw")

        # An instructor mark applies: carol can read the events API once promoted.
        carol = HubSession("carol")
        carol.login("carol-pw")
        token = carol.new_token()

        def events_status() -> int:
            return requests.get(EVENTS, headers={"Authorization": f"token {token}"},
                                timeout=5).status_code

        assert events_status() == 403
        stack.write_users(text.replace("[participants]\ncarol:carol-pw\n", "")
                          + "[instructors]\ncarol:carol-pw\n")
        within(LIVE_WITHIN + 5, lambda: events_status() == 200)  # + the dashboard's 5 s cache

        # A removed participant can no longer log in and their server is stopped.
        without_bob = "\n".join(line for line in stack.users_file.read_text().splitlines()
                                if not line.startswith("bob:")) + "\n"
        stack.write_users(without_bob)
        within(LIVE_WITHIN, lambda: not HubSession("bob").can_login(PASSWORDS["bob"]))
        within(LIVE_WITHIN, lambda: stack.exec("pgrep", "-u", "bob", check=False).returncode == 1)
        assert (stack.home / "bob").is_dir(), "a removed participant's home must be kept"

        # Through all of it alice's kernel kept its state.
        assert kernel.execute("print(x)")["stdout"].strip() == "42"
    finally:
        kernel.close()
