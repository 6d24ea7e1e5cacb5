"""/health: "ok" for anyone, the figures for instructors, the hub asked at most every few
seconds however often it is called."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.servers import Servers

from .dashapp import ALICE, PREFIX, TEACHER, auth, make_app

HEALTH = f"{PREFIX}/health"


class CountingHub:
    """The part of HubAPI that Servers.states() uses, counting the hub's work."""

    def __init__(self) -> None:
        self.calls = 0

    def paginate(self, path: str) -> Iterator[dict[str, Any]]:
        self.calls += 1
        yield {"name": "alice", "servers": {"": {"ready": True, "pending": None}}}
        yield {"name": "bob", "servers": {"": {"ready": False, "pending": "spawn"}}}


@pytest.fixture
def hub():
    return CountingHub()


@pytest.fixture
def client(tmp_path, hub):
    return make_app(tmp_path, servers=Servers(hub, max_age=3.0)).test_client()


@pytest.mark.parametrize("headers", [{}, ALICE, auth("forged"), auth("no-access-token")])
def test_anyone_but_instructors_gets_only_ok_and_the_hub_is_not_asked(client, hub, headers):
    for _ in range(20):
        r = client.get(HEALTH, headers=headers)
        assert r.status_code == 200 and r.json == {"status": "ok"}
    assert hub.calls == 0


def test_instructors_get_the_figures(client, hub):
    r = client.get(HEALTH, headers=TEACHER)
    assert r.status_code == 200
    assert r.json["status"] == "ok" and r.json["running_servers"] == 2
    assert {"queue", "renders", "render_errors", "last_render", "host_memory",
            "events", "uptime_seconds"} <= set(r.json)


def test_a_flood_of_health_requests_asks_the_hub_once_per_period(client, hub, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("dashboard.servers.time.monotonic", lambda: clock[0])
    for _ in range(50):
        assert client.get(HEALTH, headers=TEACHER).json["running_servers"] == 2
    assert hub.calls == 1
    clock[0] += 3.5  # Servers.max_age later: asked again
    client.get(HEALTH, headers=TEACHER)
    assert hub.calls == 2
