"""users.txt edits apply within 5 s while the hub runs, and nobody else's kernel notices."""

from __future__ import annotations

import re
import time

import requests

from tests.e2e.appliance.conftest import BROKEN_LINE, EVENTS, PASSWORDS, USERS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within

LIVE_WITHIN = 5.0


def test_malformed_line_is_reported_with_its_number(stack: Stack):
    within(15, lambda: f"users.txt line {BROKEN_LINE}: expected 'username:password'"
           in stack.logs(), "users-sync reports the broken line")
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


def test_what_editors_do_to_users_txt_never_locks_the_class_out(
        stack: Stack, alice: HubSession, teacher_token: str):
    """Truncation while saving, a Latin-1 byte, a BOM, CRLF: nobody loses access."""
    good = stack.users_file.read_text()
    erin_pw = re.search(r"^erin:(\S+)$", good, re.MULTILINE).group(1)  # changed earlier
    teacher = {"Authorization": f"token {teacher_token}"}

    def checks() -> dict[str, bool]:
        return {"alice logs in": HubSession("alice").can_login(PASSWORDS["alice"]),
                "erin logs in": HubSession("erin").can_login(erin_pw),
                "alice's server runs": bool(alice.user_model()["servers"].get("")),
                "teacher is an instructor": requests.get(
                    EVENTS, headers=teacher, timeout=5).status_code == 200}

    def class_works() -> bool:
        return all(checks().values())

    try:
        stack.write_users(b"")  # an editor that truncates first, then writes
        within(10, lambda: "users.txt lists nobody" in stack.logs(),
               "the empty users.txt is held back")
        time.sleep(3)  # a few sync rounds: nobody was removed meanwhile
        assert class_works(), checks()
        # One line in Latin-1 (é), a BOM at the start, Windows line ends.
        latin = ("\ufeff" + good.replace("erin:", "# Erin M\u00fcller\r\nerin:"))
        data = latin.replace("\n", "\r\n").encode("utf-8").replace(
            "M\u00fcller".encode(), "M\u00fcller".encode("latin-1"))
        stack.write_users(data)
        within(10, lambda: "not UTF-8 text" in stack.logs(), "the Latin-1 line is reported")
        # teacher still an instructor despite the BOM before [instructors]
        assert class_works(), checks()
    finally:
        stack.write_users(good)
    within(10, class_works, "the class works with the good file again")


def test_simultaneous_additions_from_the_form_all_arrive(stack: Stack, teacher_token: str):
    from concurrent.futures import ThreadPoolExecutor

    good = stack.users_file.read_text()
    url = EVENTS.rsplit("/events", 1)[0] + "/users"
    names = [f"extra{i}" for i in range(8)]

    def add(name: str) -> int:
        return requests.post(url, json={"name": name, "password": f"{name}-pw"}, timeout=30,
                             headers={"Authorization": f"token {teacher_token}"}).status_code

    try:
        with ThreadPoolExecutor(len(names)) as pool:
            assert list(pool.map(add, names)) == [201] * len(names)
        text = stack.users_file.read_text()
        assert all(f"\n{n}:" in text for n in names), text
        within(10, lambda: all(HubSession(n).can_login(f"{n}-pw") for n in names),
               "everyone added can log in")
    finally:  # more than half the class at once: said on purpose (the removal guard)
        stack.write_users(good + f"# confirm: remove {len(names)}\n")
        within(10, lambda: not HubSession(names[0]).can_login(f"{names[0]}-pw"),
               "the additions are removed again")
