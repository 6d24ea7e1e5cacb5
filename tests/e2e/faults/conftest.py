"""One real stack for the fault and bad-input suite (issue 13): loopback ports 840-843,
http://lab.localhost:840 for browsers, compose project workshop-faults-e2e, everything
it writes under tmp/e2e-faults. Built, started and torn down like the appliance package's
(tests/e2e/appliance/conftest.py).

Who is in the class (users.txt, plain passwords: logins cost no bcrypt here):
- LOAD: 50 participants posting the kill -9 test's 10 000 events;
- OTHERS: 30 participants saving normally beside the monster;
- PROBES: 5 participants whose tokens the bad-input and property tests use (rotated, so
  the rate limit, which is not what they test, rarely answers);
- MONSTER: one participant with a real JupyterLab server (the monster notebooks, and a
  real save while the dashboard is down);
- TEACHER: the instructor.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e import hubclient
from tests.e2e.compose_stack import ROOT, Stack, local_addresses
from tests.e2e.faults.classroom import (
    Board,
    Participant,
    mint_tokens,
    participants,
    password,
    users_txt,
    wait_in_force,
)
from tests.e2e.hubclient import HubSession

PROJECT = "workshop-faults-e2e"
ADDRESSES = local_addresses(840)
DASHBOARD = ADDRESSES.service("dashboard").rstrip("/")
LOAD = [f"load{n:02d}" for n in range(50)]
OTHERS = [f"other{n:02d}" for n in range(30)]
PROBES = [f"probe{n}" for n in range(5)]
MONSTER = "mallory"
TEACHER = "teacher"
USERS_IN_CLASS = [*LOAD, *OTHERS, *PROBES, MONSTER]
USERS = users_txt(USERS_IN_CLASS, [TEACHER])


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    s = Stack(ROOT / "tmp" / "e2e-faults", project=PROJECT, port=ADDRESSES.port)
    s.down()  # a stack left over from an interrupted run
    s.prepare(USERS, {"welcome.md": "# Welcome\n"})
    with s.running("faults"):
        yield s


@pytest.fixture(scope="package")
def tokens(stack: Stack) -> dict[str, str]:
    started = time.monotonic()
    minted = mint_tokens([*LOAD, *OTHERS, *PROBES, TEACHER], ADDRESSES)
    wait_in_force(Board(ADDRESSES, minted[TEACHER]), len(USERS_IN_CLASS))
    print(f"\n{len(minted)} logins and tokens, class in force, in "
          f"{time.monotonic() - started:.1f}s")
    return minted


@pytest.fixture(scope="package")
def people(stack: Stack, tokens: dict[str, str]) -> dict[str, Participant]:
    return participants({n: t for n, t in tokens.items() if n != TEACHER}, stack.home)


@pytest.fixture(scope="package")
def board(tokens: dict[str, str]) -> Board:
    return Board(ADDRESSES, tokens[TEACHER])


@pytest.fixture(scope="package")
def monster(stack: Stack) -> HubSession:
    """The one participant with a real server: logged in, started, JupyterLab opened."""
    return hubclient.started(MONSTER, password(MONSTER), ADDRESSES)
