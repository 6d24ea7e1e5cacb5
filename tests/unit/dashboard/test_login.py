"""The OAuth callback: readable refusals instead of HubOAuth's 500s, and HubOAuth (not
thread-safe) used by one thread at a time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tornado.web import HTTPError

from dashboard.auth import HubLogin

from .dashapp import PREFIX, gate, make_app

CALLBACK = f"{PREFIX}/oauth_callback"


class FakeHubOAuth:
    """The parts of HubOAuth that HubLogin uses; notices when two threads are inside."""

    state_cookie_name = "dash-oauth-state"
    cookie_path = f"{PREFIX}/"
    login_url = "/hub/api/oauth2/authorize?client_id=service-dashboard"

    def __init__(self) -> None:
        self.states = {"s1": {"next_url": f"{PREFIX}/", "code_verifier": "v1"}}
        self.refuse: int | None = None
        self.inside = 0
        self.most_inside = 0

    def _enter(self) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.01)
        self.inside -= 1

    def get_code_verifier(self, state: str) -> str | None:
        return self.states.get(state, {}).get("code_verifier")

    def get_next_url(self, state: str) -> str:
        return self.states.get(state, {}).get("next_url", "/")

    def token_for_code(self, code: str, code_verifier: str | None = None) -> str:
        self._enter()
        if self.refuse:
            raise HTTPError(self.refuse, "Failed to check authorization: invalid_grant")
        return "teacher-token"

    def clear_oauth_state(self, state: str) -> None:
        self._enter()

    def generate_pkce_code_challenge(self) -> tuple[str, str, str]:
        self._enter()
        return "v2", "c2", "S256"

    def generate_state(self, next_url: str, **extra: str) -> str:
        self.states["s2"] = {"next_url": next_url, **extra}
        return "s2"


@pytest.fixture
def hub_auth():
    return FakeHubOAuth()


@pytest.fixture
def client(tmp_path, hub_auth):
    return make_app(tmp_path, gate=gate(login=HubLogin(hub_auth))).test_client()


def callback(client, state: str = "s1", cookie: str = "s1"):
    client.set_cookie(FakeHubOAuth.state_cookie_name, cookie, path=f"{PREFIX}/")
    return client.get(CALLBACK, query_string={"code": "c", "state": state})


def test_a_good_callback_logs_in_and_returns(client):
    r = callback(client)
    assert r.status_code == 302 and r.headers["Location"] == f"{PREFIX}/"
    assert any(c.startswith("dash=") for c in r.headers.getlist("Set-Cookie"))


def test_an_expired_state_is_403_not_500(client):
    r = callback(client, state="gone", cookie="gone")
    assert r.status_code == 403 and "expired" in r.json["message"]


@pytest.mark.parametrize(("hub_status", "status"), [(500, 403), (502, 502)])
def test_a_code_the_hub_refuses_is_readable(client, hub_auth, hub_status, status):
    hub_auth.refuse = hub_status
    r = callback(client)
    assert r.status_code == status and "did not accept this login" in r.json["message"]


def test_hub_oauth_is_used_by_one_thread_at_a_time(tmp_path, hub_auth):
    app = make_app(tmp_path, gate=gate(login=HubLogin(hub_auth)))
    start = threading.Barrier(8)

    def visit(_: int) -> int:
        client = app.test_client()
        start.wait()
        return client.get(f"{PREFIX}/", headers={"Accept": "text/html"}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(visit, range(8))) == {302}  # to the hub's login
    assert hub_auth.most_inside == 1
