"""Bad inputs to every route of the dashboard, through the real proxy, from nobody, a
participant (real token) and an instructor (real token): each gets its clear 4xx (or
the page it asked for, where the input is merely odd), never a 5xx, and the dashboard
keeps serving (the same process answers afterwards).

The routes are the running code's own (the Flask app's url_map, built here from the same
services/ the stack mounts); a route without cases in badinputs.py fails the first test.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest
import requests
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect

from tests.e2e.compose_stack import Stack
from tests.e2e.faults.badinputs import CASES, SENDERS, Case, MiB, Tally
from tests.e2e.faults.classroom import save_event
from tests.e2e.faults.conftest import ADDRESSES, PROBES, TEACHER
from tests.e2e.faults.rawhttp import Answer, send
from tests.unit.dashboard.dashapp import make_app

PREFIX = "/services/dashboard"
ORIGIN = ADDRESSES.service("dashboard")
SAMPLES = {"user": "probe1", "path": "day1/intro.ipynb", "filename": "dashboard.css"}
TALLY = Tally()


@pytest.fixture(scope="module")
def url_map() -> Map:
    with tempfile.TemporaryDirectory() as tmp:
        return make_app(Path(tmp)).url_map


def rules(url_map: Map) -> dict[str, set[str]]:
    """Each route below the prefix, with its methods."""
    return {r.rule.removeprefix(PREFIX): set(r.methods or ()) - {"HEAD", "OPTIONS"}
            for r in url_map.iter_rules()}


def filled(rule: str) -> str:
    for name, value in SAMPLES.items():
        rule = rule.replace(f"<{name}>", value).replace(f"<path:{name}>", value)
    return rule


@pytest.fixture(scope="module")
def senders(tokens: dict[str, str]) -> dict[str, tuple[str, dict[str, str]]]:
    """Each sender's name and credentials."""
    return {"nobody": ("nobody", {}),
            "participant": (PROBES[0], {"Authorization": f"token {tokens[PROBES[0]]}"}),
            "instructor": (TEACHER, {"Authorization": f"token {tokens[TEACHER]}"})}


@pytest.fixture(scope="module")
def serving_pid(stack: Stack) -> Iterator[int]:
    yield stack.dashboard_pid()


def unrouted(url_map: Map, method: str, target: str) -> int | None:
    """What werkzeug answers before any route sees this target (decoded as werkzeug
    decodes it): 404 or 405 when no route takes it, 308 to merge slashes; else None."""
    path = PREFIX + unquote(target.split("?", 1)[0], errors="replace")
    try:
        url_map.bind("dashboard").match(path, method)
    except (NotFound, MethodNotAllowed, RequestRedirect) as e:
        return e.code
    return None


def deliver(case: Case, name: str, credentials: dict[str, str]) -> Answer:
    headers = {**credentials, "Accept": case.accept}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    body = case.body.replace(b"{user}", name.encode()) if case.body is not None else None
    for _ in range(10):
        answer = send(ORIGIN, case.method, PREFIX + case.target.replace("{user}", name),
                      body=body, headers=headers)
        if answer.status != 429:  # the rate limit is not what these cases are about
            break
        TALLY.add(429)
        time.sleep(float(answer.headers.get("retry-after", "1")))
    TALLY.add(answer.status)
    return answer


def check(case: Case, sender: str, answer: Answer, expect: set[int]) -> None:
    where = f"{case} as {sender}"
    assert answer.status < 500, f"{where}: {answer.status} {answer.body[:300]!r}"
    assert answer.status in expect, f"{where}: {answer.status}, not {expect}: " \
                                    f"{answer.message()[:300]}"
    if answer.status == 302:  # to the hub's login, nowhere else
        assert answer.headers["location"].startswith(ADDRESSES.hub("/hub/")), where
    elif 400 <= answer.status < 500:
        message = answer.message()
        assert message.strip(), f"{where}: {answer.status} without a message"
        if case.says and sender in case.says_to and answer.status in case.expect[sender]:
            assert case.says in message, f"{where}: {message[:300]!r}"


def test_every_route_has_bad_input_cases(url_map: Map):
    covered = {case.rule for case in CASES}
    assert set(rules(url_map)) - covered == set()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_gets_a_clear_answer(case: Case, url_map: Map, senders, serving_pid):
    for sender in SENDERS:
        name, credentials = senders[sender]
        status = unrouted(url_map, case.method, case.target.replace("{user}", name))
        expect = case.expect[sender] if status is None else {status}
        check(case, sender, deliver(case, name, credentials), expect)


def test_every_route_refuses_a_method_it_does_not_take(url_map: Map, senders):
    for rule in rules(url_map):
        case = Case("PATCH", rule, filled(rule), {key: {405} for key in SENDERS})
        for sender in SENDERS:
            check(case, sender, deliver(case, *senders[sender]), {405})


def test_every_post_route_answers_a_10_mb_body(url_map: Map, senders):
    # Refused from the headers (401 without credentials, 413 past the route's limit)
    # except uploads, which take 100 MiB: a participant is 403, an instructor's garbage
    # is "no file chosen". Before the lingering close (httpserver.py) the proxy, still
    # streaming, answered most of these with its own 503 "write ECONNRESET".
    for rule, methods in rules(url_map).items():
        if "POST" not in methods:
            continue
        upload = rule == "/materials"
        expect = {"nobody": {401}, "participant": {403 if upload else 413},
                  "instructor": {400 if upload else 413}}
        case = Case("POST", rule, filled(rule), expect, b"x" * (10 * MiB),
                    "application/json")
        for sender in SENDERS:
            check(case, sender, deliver(case, *senders[sender]), expect[sender])


def test_a_traversal_out_of_the_prefix_never_reaches_a_file(senders):
    # The proxy resolves ".." (and "%2e%2e") before routing: such a path is the hub's,
    # which sends it to its own pages; nothing of the file system comes back.
    for target in ("/summary/../../../etc/passwd.ipynb", "/static/%2e%2e/%2e%2e/app.py",
                   "/../../../../etc/passwd", "/view/../../../home/probe1/x.ipynb"):
        answer = send(ORIGIN, "GET", PREFIX + target, headers=senders["instructor"][1])
        assert answer.status in (301, 302, 404), (target, answer.status)
        bodies = [answer.body]
        if answer.status != 404:  # the hub's redirect: follow it to the end
            end = requests.get(urljoin(ORIGIN, answer.headers["location"]), timeout=10,
                               headers=senders["instructor"][1])
            assert end.url.startswith(ADDRESSES.hub("/hub/")), (target, end.url)
            assert end.status_code in (200, 404), (target, end.url, end.status_code)
            bodies.append(end.content)
        assert not any(b"root:" in b or b"def create_app" in b for b in bodies), target


def test_undecodable_paths_are_refused_and_never_crash_the_dashboard(senders):
    # configurable-http-proxy 5.3 answers a path that is not percent-encoded UTF-8 with
    # its own 500 ("URIError: URI malformed", before any routing: the hub's paths too).
    # That is upstream's; the dashboard itself, asked directly, answers such a path with
    # a clear 4xx or the (empty) page of a notebook nobody has.
    for target in ("/api/summary/%FF.ipynb", "/view/%FF/a.ipynb", "/%FF%FE"):
        direct = send(ADDRESSES.dashboard_url, "GET", PREFIX + target,
                      headers={**senders["instructor"][1], "Accept": "application/json"})
        assert direct.status in (200, 400, 404), (target, direct.status)
        proxied = send(ORIGIN, "GET", PREFIX + target, headers=senders["instructor"][1])
        assert proxied.status in (400, 404, 500), (target, proxied.status)
        if proxied.status == 500:
            assert b"JupyterHub" in proxied.body  # the proxy's error page, not ours


def test_an_upload_cannot_name_a_place_outside_the_materials(stack: Stack, tokens):
    auth = {"Authorization": f"token {tokens[TEACHER]}"}
    url = ADDRESSES.service("dashboard", "materials")
    r = requests.post(url, headers=auth, timeout=30,
                      files={"files": ("../../../../etc/evil.txt", b"evil")})
    assert r.status_code == 200  # kept as its last part only
    r = requests.post(url, headers=auth, timeout=30, data={"folder": "../../etc"},
                      files={"files": ("x.txt", b"x")})
    assert r.status_code == 400 and "not a usable materials path" in r.text
    assert (stack.materials / "evil.txt").read_bytes() == b"evil"
    assert not (stack.workdir / "etc").exists() and not (stack.materials / "x.txt").exists()


def test_the_dashboard_kept_serving(stack: Stack, serving_pid: int, tokens):
    print(f"\nbad inputs: {TALLY.requests} requests, answers by status: "
          f"{dict(sorted(TALLY.by_status.items()))}")
    assert TALLY.by_status and max(TALLY.by_status) < 500
    assert stack.dashboard_pid() == serving_pid  # never died (the hub would restart it)
    who = PROBES[1]
    r = requests.post(ADDRESSES.service("dashboard", "events"),
                      json=save_event(who, "after/bad-inputs.ipynb"),
                      headers={"Authorization": f"token {tokens[who]}"}, timeout=10)
    assert r.status_code == 201
    assert requests.get(ADDRESSES.hub("/hub/health"), timeout=10).status_code == 200
