"""The benchmarks must not rot: a tiny run of each against the test stack."""

from __future__ import annotations

from benchmarks.burst_login import burst, participants, stop_all
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within


def test_burst_login_with_three_participants(stack: Stack):
    people = participants(3, prefix="smoke")
    before = stack.users_file.read_text()
    stack.write_users(before + "[participants]\n"
                      + "".join(f"{name}:{password}\n" for name, password in people))
    within(10, lambda: all(HubSession(n).can_login(p) for n, p in people),
           "benchmark users log in")
    try:
        result = burst(people)
        print("\n" + result.row())
        assert result.failures == []
        assert len(result.ready) == 3 and 0 < result.percentile(0.5) <= result.total
    finally:  # the other tests find the class as it was
        stop_all(people)
        stack.write_users(before)
        within(30, lambda: not HubSession(people[-1][0]).can_login(people[-1][1]),
               "benchmark users are gone again")
