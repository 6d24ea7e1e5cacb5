"""Logins: checked off the event loop, bounded, in equal time, against the list in force."""

from __future__ import annotations

import asyncio
import statistics
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

    async def main() -> float:
        checks = asyncio.gather(*(checker.check(account, "wrong", 12) for _ in range(4)))
        worst, last = 0.0, time.perf_counter()
        while not checks.done():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst, last = max(worst, now - last - 0.005), now
        assert await checks == [False] * 4
        return worst

    worst = asyncio.run(main())
    # Four cost-12 checks take about a second of CPU; on the loop that was the lag.
    assert worst < 0.1, f"event loop stalled {worst:.3f}s"


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


def median_time(check, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        check()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_unknown_names_and_plain_passwords_take_as_long_as_a_hashed_account():
    cost = 10  # ~60 ms: far above the noise, and what tells names apart without the dummy
    roster = parse(f"alice:{hashed('pw', cost)}\nbob:plain-pw\n")
    assert usual_cost(roster.accounts.values()) == cost
    known = median_time(lambda: check_in_equal_time(roster.accounts["alice"], "no", cost))
    unknown = median_time(lambda: check_in_equal_time(None, "no", cost))
    plain = median_time(lambda: check_in_equal_time(roster.accounts["bob"], "no", cost))
    too_long = median_time(lambda: check_in_equal_time(roster.accounts["alice"], "x" * 99,
                                                       cost))
    for other in (unknown, plain, too_long):
        assert 0.6 < other / known < 1.6, (known, unknown, plain, too_long)
    assert check_in_equal_time(roster.accounts["bob"], "plain-pw", cost)
    assert not check_in_equal_time(None, "plain-pw", cost)


def test_a_plain_text_class_pays_no_bcrypt_and_still_tells_nothing():
    roster = parse("alice:a\nbob:b\n")
    assert usual_cost(roster.accounts.values()) is None
    known = median_time(lambda: check_in_equal_time(roster.accounts["alice"], "no", None))
    unknown = median_time(lambda: check_in_equal_time(None, "no", None))
    assert known < 0.005 and unknown < 0.005  # both free, alike
