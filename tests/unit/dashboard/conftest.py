"""The live view's app for its tests (test_feed, test_helpdesk, test_push, test_live_board).

A test module that defines a `client` of its own (most of the others) shadows this one."""

from __future__ import annotations

import pytest

from .livekit import make_live_app


@pytest.fixture
def live_app(tmp_path, monkeypatch):
    return make_live_app(tmp_path, monkeypatch)


@pytest.fixture
def client(live_app):
    return live_app.test_client()
