"""Logins: checked off the event loop, bounded, in equal time, against the list in force."""

from __future__ import annotations

import asyncio
import time

import bcrypt
import pytest
from tornado import web

from workshop.authenticator import UsersFileAuthenticator
from workshop.passwordcheck import Busy, PasswordChecker, check_in_equal_time, usual_cost
from workshop.roster import RosterFile, parse
from workshop.rosterguard import GuardedRoster
from workshop.syncstatus import last_good_path

COST = 8  # quick for tests; the equal-time rule is the same at 12


def hashed(password: str, cost: int = COST) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


@pytest.fixture
def authenticator(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hashed('alice-pw')}\nbob:bob-pw\n[instructors]\n"
                     f"teacher:{hashed('teacher-pw')}\n")
    return UsersFileAuthenticator(users_file=str(users),
                                  users_sync_status=str(tmp_path / "state" / "sync.json"))


def login(auth: UsersFileAuthenticator, name: str, password: str):
    return asyncio.run(auth.authenticate(None, {"username": name, "password": password}))


def test_logins(authenticator):
    assert login(authenticator, "alice", "alice-pw") == {"name": "alice"}
    assert login(authenticator, "Bob", "bob-pw") == {"name": "bob"}
    assert login(authenticator, "alice", "bob-pw") is None
    assert login(authenticator, "nobody-here", "x") is None
    assert login(authenticator, "alice", "x" * 100) is None  # over bcrypt's limit


def test_a_form_without_a_username_is_a_400_not_the_hubs_500(authenticator):
    # JupyterHub re-renders the form with data["username"] after a refused login: a post
    # without the field raised KeyError there (found by tests/e2e/faults).
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(authenticator.authenticate(None, {"password": "x"}))
    assert refused.value.status_code == 400 and "username" in refused.value.reason


def test_while_users_txt_is_truncated_logins_use_the_last_good_list(authenticator, tmp_path):
    assert login(authenticator, "alice", "alice-pw")
    (tmp_path / "users.txt").write_text("")  # an editor mid-save
    assert login(authenticator, "alice", "alice-pw") == {"name": "alice"}
    assert login(authenticator, "teacher", "teacher-pw") == {"name": "teacher"}


def test_logins_follow_the_last_good_copy_users_sync_wrote(tmp_path):
    # users-sync applied a list, then the hub restarted while users.txt was empty: the hub
    # still lets the class in, exactly as users-sync keeps them.
    status = tmp_path / "state" / "sync.json"
    users = tmp_path / "users.txt"
    users.write_text("alice:a\ncarol:c\n")
    sync_side = GuardedRoster(RosterFile(users), last_good_path(status))
    sync_side.remember(sync_side.current().roster)
    users.write_text("")
    fresh = UsersFileAuthenticator(users_file=str(users), users_sync_status=str(status))
    assert login(fresh, "carol", "c") == {"name": "carol"}
    # A deliberate removal (in small steps) applies to logins at once.
    users.write_text("alice:a\n")
    assert login(fresh, "carol", "c") is None and login(fresh, "alice", "a")


def test_the_event_loop_keeps_running_while_passwords_are_checked():
    account = parse(f"alice:{hashed('pw', 12)}\n").accounts["alice"]
    checker = PasswordChecker(threads=2, max_waiting=8)

    async def main() -> tuple[float, float]:
        started = last = time.perf_counter()
        checks = asyncio.gather(*(checker.check(account, "wrong", 12) for _ in range(4)))
        stalled = 0.0
        while not checks.done():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            if now - last > 0.05:  # the loop could not run for a noticeable moment
                stalled += now - last
            last = now
        assert await checks == [False] * 4
        return stalled, time.perf_counter() - started

    stalled, total = asyncio.run(main())
    # On the loop, four cost-12 checks stall it the whole time (~1 s); off it, only a
    # busy machine's scheduling hiccups remain.
    assert stalled < 0.3 * total, f"event loop stalled {stalled:.2f}s of {total:.2f}s"


def test_a_full_queue_refuses_at_once():
    account = parse(f"alice:{hashed('pw', 12)}\n").accounts["alice"]
    checker = PasswordChecker(threads=1, max_waiting=2)

    async def main() -> tuple[int, int, float]:
        started = time.perf_counter()
        results = await asyncio.gather(*(checker.check(account, "pw", 12) for _ in range(6)),
                                       return_exceptions=True)
        busy = sum(isinstance(r, Busy) for r in results)
        return busy, sum(r is True for r in results), time.perf_counter() - started

    busy, ok, _ = asyncio.run(main())
    assert (busy, ok) == (3, 3)  # one running + two waiting; the rest refused
    assert checker.pending == 0


def test_a_flood_is_refused_fast_through_the_authenticator(authenticator, caplog):
    authenticator.password_check_threads, authenticator.max_waiting_checks = 1, 0

    async def main():
        attempts = [authenticator.authenticate(None, {"username": name, "password": "x"})
                    for name in ("alice", "alice", "nobody-here")]
        return await asyncio.gather(*attempts, return_exceptions=True)

    first, *refused = asyncio.run(main())
    assert first is None  # checked: wrong password
    # Refused at once, for a listed and an unknown name alike: "try again", not "wrong".
    assert [(type(e), e.status_code) for e in refused] == [(web.HTTPError, 429)] * 2
    assert "try again" in refused[0].reason
    assert "refused at once" in caplog.text


def cpu_times(checks: dict[str, object], repeat: int = 5) -> dict[str, float]:
    """The least CPU time each check took, run in turns: what it costs, whatever else the
    machine is busy with (a bcrypt check runs in the calling thread)."""
    best = dict.fromkeys(checks, float("inf"))
    for _ in range(repeat):
        for name, check in checks.items():
            started = time.thread_time()
            check()
            best[name] = min(best[name], time.thread_time() - started)
    return best


def test_unknown_names_and_plain_passwords_take_as_long_as_a_hashed_account():
    cost = 10  # ~60 ms: far above the noise, and what tells names apart without the dummy
    roster = parse(f"alice:{hashed('pw', cost)}\nbob:plain-pw\n")
    alice, bob = roster.accounts["alice"], roster.accounts["bob"]
    assert usual_cost(roster.accounts.values()) == cost
    times = cpu_times({
        "listed": lambda: check_in_equal_time(alice, "no", cost),
        "unknown": lambda: check_in_equal_time(None, "no", cost),
        "plain": lambda: check_in_equal_time(bob, "no", cost),
        "too long": lambda: check_in_equal_time(alice, "x" * 99, cost),
    })
    for name in ("unknown", "plain", "too long"):  # without the dummy check: ~0
        assert 0.7 < times[name] / times["listed"] < 1.4, times
    assert check_in_equal_time(bob, "plain-pw", cost)
    assert not check_in_equal_time(None, "plain-pw", cost)


def test_a_plain_text_class_pays_no_bcrypt_and_still_tells_nothing():
    roster = parse("alice:a\nbob:b\n")
    assert usual_cost(roster.accounts.values()) is None
    times = cpu_times({"listed": lambda: check_in_equal_time(roster.accounts["alice"], "no",
                                                             None),
                       "unknown": lambda: check_in_equal_time(None, "no", None)})
    assert times["listed"] < 0.002 and times["unknown"] < 0.002  # both free, alike
