"""Property-based tests of the events API against the real stack: whatever a participant's
kernel posts through the proxy with its real token, the answer is 201 or a readable 4xx,
never a 5xx, and what a 201 stored is exactly what the instructor's listing shows.

The bodies are the unit tests' strategies (tests/unit/dashboard/test_api_properties.py:
valid events, garbage JSON, deep nesting, huge numbers, raw bytes, unknown fields), with
valid events more often (each 201 is checked in the listing) and few examples: each is
real HTTP through the proxy, the dashboard and the hub's token check. The senders take
turns among the probe participants, so the rate limit (not under test here) rarely
answers; when it does, its Retry-After is obeyed.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dashboard.events import stored_fields
from tests.e2e.faults.conftest import ADDRESSES, PROBES, TEACHER
from tests.unit.dashboard.test_api_properties import bodies, encode, mostly_valid

EVENTS = ADDRESSES.service("dashboard", "events")
TURNS = itertools.cycle(PROBES)


def post(token: str, data: bytes) -> requests.Response:
    for _ in range(10):
        r = requests.post(EVENTS, data=data, timeout=30,
                          headers={"Authorization": f"token {token}",
                                   "Content-Type": "application/json"})
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))
    pytest.fail("rate-limited ten times in a row")


@pytest.fixture(scope="module")
def teacher(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"token {tokens[TEACHER]}"}


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(mostly_valid, bodies))
def test_any_posted_body_is_201_or_a_readable_4xx(tokens: dict[str, str],
                                                 teacher: dict[str, str], body: Any):
    user = next(TURNS)
    r = post(tokens[user], encode(body, user))
    event(f"status {r.status_code}")
    assert r.status_code == 201 or 400 <= r.status_code < 500, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/json"), r.text[:300]
    if r.status_code != 201:
        assert isinstance(r.json()["message"], str) and r.json()["status"] == r.status_code
        return
    assert set(r.json()) <= stored_fields() and r.json()["user"] == user
    listed = requests.get(EVENTS, params={"id": r.json()["id"]}, headers=teacher, timeout=30)
    assert listed.json() == [r.json()]


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=4))
def test_any_query_of_the_listing_is_200_or_a_readable_400(teacher: dict[str, str],
                                                          query: list[tuple[str, str]]):
    r = requests.get(EVENTS, params=query, headers=teacher, timeout=30)
    assert r.status_code in (200, 400), r.text[:300]
    if r.status_code == 200:
        assert all(set(e) <= stored_fields() for e in r.json())
    else:
        assert isinstance(r.json()["message"], str)
