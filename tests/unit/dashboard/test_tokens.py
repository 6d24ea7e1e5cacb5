"""Token checks against a fake hub: correct from many threads at once, cached briefly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from dashboard.auth import AuthGate
from dashboard.tokens import HubTokenCheck, HubUnavailable

from .dashapp import ACCESS, EVENTS, TEACHER, auth, gate, make_app
from .fakehub import FakeHub, serving

THREADS = 16
PEOPLE = {f"tok-{n}": {"name": f"user{n}", "kind": "user", "scopes": [ACCESS]}
          for n in range(THREADS)}


def test_sixteen_threads_at_once_get_their_own_users():
    # HubAuth.user_for_token raised "This event loop is already running" when two
    # waitress threads asked at the same moment; each thread here asks with its own
    # token while the others' requests are open (the hub takes 50 ms to answer).
    hub = FakeHub(PEOPLE, delay=0.05)
    with serving(hub) as url:
        check = HubTokenCheck(url)
        start = threading.Barrier(THREADS)

        def ask(n: int) -> list[str | None]:
            start.wait()
            names = []
            for token in (f"tok-{n}", f"tok-{(n + 1) % THREADS}", "forged", f"tok-{n}"):
                user = check(token)
                names.append(user["name"] if user else None)
            return names

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(ask, range(THREADS)))
    for n, names in enumerate(results):
        assert names == [f"user{n}", f"user{(n + 1) % THREADS}", None, f"user{n}"]
    # Each token asked of the hub once (16 + the forged one): threads asking about the
    # same token at the same time wait for one answer.
    assert hub.calls == THREADS + 1


def test_answers_are_kept_for_the_ttl_and_the_cache_is_bounded():
    now = [0.0]
    hub = FakeHub(PEOPLE)
    with serving(hub) as url:
        check = HubTokenCheck(url, ttl=5, max_cached=2, clock=lambda: now[0])
        assert check("tok-1")["name"] == "user1" and check("tok-1")["name"] == "user1"
        assert check("nope") is None and check("nope") is None
        assert hub.calls == 2
        now[0] = 6.0  # expired: asked again (a removed user is out within the ttl)
        check("tok-1")
        assert hub.calls == 3
        check("tok-2")
        check("tok-3")  # the oldest answer (tok-1) makes room
        check("tok-1")
        assert hub.calls == 6


@pytest.mark.parametrize("status", [500, 502, 400])
def test_a_hub_in_trouble_is_hub_unavailable_and_the_gate_says_503(tmp_path, status):
    hub = FakeHub(PEOPLE)
    hub.status = status
    with serving(hub) as url:
        check = HubTokenCheck(url)
        with pytest.raises(HubUnavailable, match=str(status)):
            check("tok-1")
        client = make_app(tmp_path, gate=gate(check)).test_client()
        r = client.post(EVENTS, json={}, headers=auth("tok-1"))
        assert r.status_code == 503 and "cannot check the token" in r.json["message"]
        hub.status = None
        assert check("tok-1")["name"] == "user1"  # trouble is not cached


def test_an_unreachable_hub_is_hub_unavailable():
    with serving(FakeHub({})) as url:
        pass  # stopped: nothing listens there now
    with pytest.raises(HubUnavailable, match="cannot reach"):
        HubTokenCheck(url, timeout=1)("tok-1")


def test_the_gate_through_the_app_from_sixteen_threads(tmp_path):
    # The reported failure: GET /events answering 500 under concurrent requests.
    users = {**PEOPLE, "teacher-token": {"name": "teacher", "kind": "user",
                                         "scopes": [ACCESS, "custom:dashboard:instructor"]}}
    hub = FakeHub(users, delay=0.02)
    with serving(hub) as url:
        app = make_app(tmp_path, gate=gate(HubTokenCheck(url)))
        start = threading.Barrier(THREADS)

        def work(n: int) -> tuple[int, int]:
            client = app.test_client()
            start.wait()
            event = {"type": "save-notebook", "user": f"user{n}", "path": "a.ipynb"}
            posted = client.post(EVENTS, json=event, headers=auth(f"tok-{n}")).status_code
            listed = client.get(EVENTS, headers=TEACHER).status_code
            return posted, listed

        with ThreadPoolExecutor(THREADS) as pool:
            assert set(pool.map(work, range(THREADS))) == {(201, 200)}


def test_has_credentials_needs_a_token_or_our_signed_cookie():
    g: AuthGate = gate()
    signed = g.serializer.dumps("some-token")
    assert g.has_credentials("token abc", "")
    assert g.has_credentials("Bearer abc", "")
    assert g.has_credentials("", f"other=1; dash={signed}")
    assert not g.has_credentials("", "")
    assert not g.has_credentials("Basic YWxpY2U6cHc=", "")
    assert not g.has_credentials("token " + "a" * 300, "")
    assert not g.has_credentials("", "dash=forged.value")
