"""The hub's login form (our authenticator behind it) with odd names, through the proxy:
a clear refusal for each, nobody created, and the hub keeps serving."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from tests.e2e.compose_stack import Stack
from tests.e2e.faults.classroom import password
from tests.e2e.faults.conftest import ADDRESSES, PROBES
from tests.e2e.hubclient import XSRF_INPUT, HubSession

WHO = PROBES[2]
FORM = "application/x-www-form-urlencoded"


def form(**fields: str) -> bytes:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items()).encode()


def post_login(session: HubSession, body: bytes, content_type: str = FORM
               ) -> requests.Response:
    """The login form posted with `body` (its own _xsrf added), as a browser would."""
    page = session.http.get(ADDRESSES.hub("/hub/login"), timeout=30)
    xsrf = XSRF_INPUT.search(page.text)
    assert xsrf, "login form without _xsrf"
    body += f"&_xsrf={xsrf.group(1)}".encode() if content_type == FORM else b""
    return session.http.post(ADDRESSES.hub("/hub/login"), params={"next": "/hub/home"},
                             data=body, headers={"Content-Type": content_type},
                             allow_redirects=False, timeout=30)


REFUSED = {
    "no username field": (form(password="x"), 400),  # was JupyterHub's 500 (KeyError)
    "no fields at all": (b"", 400),
    "empty name": (form(username="", password=""), 403),
    "traversal": (form(username="../../etc/passwd", password="x"), 403),
    "header injection": (form(username=f"{WHO}\r\nX-Evil: 1", password=password(WHO)),
                         403),
    "100 000 characters": (form(username="a" * 100_000, password="x"), 403),
    "a system account": (form(username="root", password="x"), 403),
    "right-to-left override": (form(username=f"\u202e{WHO}", password=password(WHO)),
                               403),
    "look-alike letters": (form(username=WHO.replace("o", "\u043e"),
                                password=password(WHO)), 403),
    "a colon": (form(username=f"{WHO}:{password(WHO)}", password="x"), 403),
    "emoji": (form(username="😀", password="😀"), 403),
    "not UTF-8": (b"username=%FF%FE&password=x", 400),
    "raw bytes": (b"username=\xff\xfe&password=x", 400),
}


@pytest.mark.parametrize("name", REFUSED)
def test_an_odd_name_is_refused_clearly(stack: Stack, name: str):
    homes = set(p.name for p in stack.home.iterdir())
    body, status = REFUSED[name]
    r = post_login(HubSession(WHO, ADDRESSES), body)
    assert r.status_code == status, (name, r.status_code, r.text[:300])
    assert "X-Evil" not in r.headers
    if status == 403:
        assert "Invalid username or password" in r.text
    assert set(p.name for p in stack.home.iterdir()) == homes  # nobody was made
    assert requests.get(ADDRESSES.hub("/hub/health"), timeout=10).status_code == 200


@pytest.mark.parametrize("written", [f"{WHO}\x00", f"  {WHO.upper()} ", f"{WHO}\x07"])
def test_what_the_hub_strips_logs_in_as_the_listed_name_only(written: str):
    # Tornado drops control characters and spaces from form fields and JupyterHub
    # lowercases the name: these are the participant themself, never a new account.
    session = HubSession(WHO, ADDRESSES)
    r = post_login(session, form(username=written, password=password(WHO)))
    assert r.status_code == 302, r.text[:300]
    assert session.hub_api("GET", "/user").json()["name"] == WHO


def test_a_json_login_is_refused():
    r = post_login(HubSession(WHO, ADDRESSES),
                   b'{"username": "%s", "password": "%s"}' % (WHO.encode(),
                                                               password(WHO).encode()),
                   "application/json")
    assert r.status_code == 403 and "Invalid username or password" not in r.text
