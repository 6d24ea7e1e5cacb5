"""The API layer's pure parts: Retry-After, the retry budget, error bodies pydo returns."""

from __future__ import annotations

import email.utils
import io

import pytest

from provision.api import Api, TransientApiError, _Budget, retry_after
from provision.backoff import Backoff
from provision.errors import ProvisionError
from provision.progress import Progress


def test_retry_after_seconds_and_dates():
    assert retry_after("60") == 60.0
    assert retry_after("1.5") == 1.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after(date, now=1_000_000) == pytest.approx(30)
    for nothing in (None, "", "0", "-5", "soon", email.utils.formatdate(999_000, usegmt=True)):
        assert retry_after(nothing, now=1_000_000) is None


def test_budget_refuses_a_wait_longer_than_what_is_left():
    budget = _Budget(Backoff(first=0.1, factor=2, maximum=1, timeout=10))
    with pytest.raises(ProvisionError) as caught:
        budget.wait_for(TransientApiError("HTTP 429 slow down", retry_after=60), "listing x")
    message = caught.value.message
    assert "asks to wait 60s before retrying listing x (HTTP 429 slow down)" in message
    assert "--api-timeout 10" in message and "\n" not in message


def test_budget_waits_at_least_what_is_asked_and_stops_at_the_deadline():
    budget = _Budget(Backoff(first=0.1, factor=2, maximum=1, timeout=10))
    assert budget.wait_for(TransientApiError("HTTP 429", retry_after=3), "x") == 3
    assert budget.wait_for(TransientApiError("HTTP 503"), "x") == pytest.approx(0.2)
    spent = _Budget(Backoff(first=0.1, factor=2, maximum=1, timeout=0))
    with pytest.raises(ProvisionError, match="kept failing: x: HTTP 503"):
        spent.wait_for(TransientApiError("HTTP 503"), "x")


def test_an_error_body_returned_instead_of_raised_is_an_error():
    api = Api("dop_v1_not-used-000000", "https://127.0.0.1:9", Progress(io.StringIO()))
    # pydo returns the body of a 400 for firewall creates and updates (the spec lists it).
    with pytest.raises(ProvisionError, match="creating x: bad_request: ports must be positive"):
        api.once("creating x", lambda: {"id": "bad_request", "message": "ports must be\npositive"})
    assert api.once("reading x", lambda: {"id": "not_found", "message": "gone"})["id"] == \
        "not_found"  # a 404 is left to the caller
    assert api.once("reading x", lambda: {"firewall": {"id": "f", "name": "n"}})
