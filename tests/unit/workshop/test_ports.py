"""Two servers starting at once never get the same port (workshop/ports.py)."""

from __future__ import annotations

import socket

import pytest

from workshop import ports


@pytest.fixture(autouse=True)
def no_ports_given():
    ports._GIVEN.clear()
    yield
    ports._GIVEN.clear()


def test_a_port_given_to_one_server_is_not_given_to_another(monkeypatch):
    # The kernel answering bind(0) twice with the same port, as it did for two of twenty
    # containers started at once.
    answers = iter([44579, 44579, 44580])
    monkeypatch.setattr(ports, "random_port", lambda: next(answers))
    assert ports.take("burst003/") == 44579
    assert ports.take("burst004/") == 44580


def test_a_restart_or_a_stop_frees_the_servers_own_port(monkeypatch):
    answers = iter([5000, 5000, 5000])
    monkeypatch.setattr(ports, "random_port", lambda: next(answers))
    assert ports.take("alice/") == 5000
    assert ports.take("alice/") == 5000  # her own earlier port is hers to get again
    ports.release("alice/")
    assert ports.take("bob/") == 5000


def test_no_endless_search(monkeypatch):
    monkeypatch.setattr(ports, "random_port", lambda: 6000)
    ports.take("alice/")
    with pytest.raises(RuntimeError, match="no free loopback port for bob/"):
        ports.take("bob/", tries=5)


def test_real_ports_are_free_and_distinct():
    given = {ports.take(f"p{i}/") for i in range(50)}
    assert len(given) == 50
    for port in given:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free to bind
