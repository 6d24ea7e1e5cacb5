"""The benchmarks must not rot: a tiny run of each against the test stack."""

from __future__ import annotations

from benchmarks.burst_login import burst, participants
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within


def test_burst_login_with_three_participants(stack: Stack):
    people = participants(3, prefix="smoke")
    stack.write_users(stack.users_file.read_text() + "[participants]\n"
                      + "".join(f"{name}:{password}\n" for name, password in people))
    within(10, lambda: all(HubSession(n).can_login(p) for n, p in people),
           "benchmark users log in")
    result = burst(people)
    print("\n" + result.row())
    assert result.failures == []
    assert len(result.ready) == 3 and 0 < result.percentile(0.5) <= result.total
