"""Every route of the app, as an instructor, with odd path parts, query strings and bodies:
a readable 4xx (or a success), never a 5xx."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .dashapp import PREFIX, TEACHER, make_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def get_rules(app) -> list[str]:
    return sorted(r.rule for r in app.url_map.iter_rules() if "GET" in r.methods)


odd = st.text(max_size=30) | st.sampled_from(
    ["..", "../..", "%00", "a/../../etc/passwd", "x" * 2000, "٣", "²", "-1",
     "9" * 5000, "alice", "a.ipynb", "d/a.ipynb", "\x00", "\ud7ff"])
queries = st.dictionaries(st.sampled_from(["since", "limit", "code", "state", "path", "user",
                                           "next", "x"]) | st.text(max_size=8),
                          odd, max_size=3)
accepts = st.sampled_from(["application/json", "text/html", "*/*", ""])


def fill(rule: str, values: list[str]) -> str:
    parts = iter(values)
    return re.sub(r"<[^>]+>", lambda _: quote(next(parts), safe="") or "x", rule)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_get_routes_never_answer_5xx(app, client, data):
    for rule in get_rules(app):  # every route in every example
        url = fill(rule, data.draw(st.lists(odd, min_size=2, max_size=2)))
        query = data.draw(queries)
        r = client.get(url, query_string=query,
                       headers={**TEACHER, "Accept": data.draw(accepts)})
        assert r.status_code < 500, (url, query, r.get_data(as_text=True)[:300])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                         max_leaves=10),
       user=odd)
def test_instructor_posts_with_odd_input_never_answer_5xx(client, body, user):
    r = client.post(f"{PREFIX}/users", data=json.dumps(body), headers=TEACHER,
                    content_type="application/json")
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    if user in ("alice", "bob"):  # real participants: the hub is asked (none here: 502)
        return
    r = client.post(f"{PREFIX}/actions/restart/{quote(user, safe='') or 'x'}", headers=TEACHER)
    assert r.status_code < 500, r.get_data(as_text=True)[:300]


# Bad input that other modules still answer with a 500; the fixes are one line each
# (reported to the lead). strict: these fail loudly once fixed, to be turned into asserts.
@pytest.mark.parametrize("limit", ["abc", "9" * 5000])
def test_actions_limit_that_is_not_a_number_is_400(client, limit):
    r = client.get(f"{PREFIX}/api/actions", query_string={"limit": limit}, headers=TEACHER)
    assert r.status_code == 400


@pytest.mark.parametrize("since", ["²", "9" * 5000])
def test_summary_since_that_is_not_a_number_is_400(client, since):
    r = client.get(f"{PREFIX}/api/summary/a.ipynb", query_string={"since": since},
                   headers=TEACHER)
    assert r.status_code == 400
