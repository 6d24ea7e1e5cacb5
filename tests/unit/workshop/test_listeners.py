"""A participant's route leads only to a server of their own uid (workshop/listeners.py):
a port squatted by another participant's process is refused, with real sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from workshop import spawner as spawner_module
from workshop.listeners import listener_uids
from workshop.spawner import WorkshopHomes

OWNER, SQUATTER = 59995, 59996  # unused here; both in the participants' range

LISTEN_AS = """
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(60)
"""


@contextmanager
def listening_as(uid: int) -> Iterator[int]:
    """A process of `uid` listening on a loopback port; the port. (The system Python:
    the test venv may not be readable by other uids.)"""
    proc = subprocess.Popen(["/usr/bin/python3", "-c", LISTEN_AS], user=uid, group=uid,
                            extra_groups=[], stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_listening_sockets_uid_is_found():
    with listening_as(SQUATTER) as port:
        assert listener_uids(port) == {SQUATTER}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert listener_uids(s.getsockname()[1]) == {os.getuid()}


def test_a_port_nobody_listens_on_has_no_owner():
    port = free_port()
    time.sleep(0.05)
    assert listener_uids(port) == set()


def check(port: int, monkeypatch) -> None:
    monkeypatch.setattr(spawner_module, "participant_uid", lambda name, root: OWNER)
    spawner = SimpleNamespace(user=SimpleNamespace(name="alice"), home_root="/home",
                              log=logging.getLogger("test"))
    asyncio.run(WorkshopHomes._check_listener(spawner, port))  # type: ignore[arg-type]


def test_a_squatted_port_is_not_routed_to(monkeypatch):
    with listening_as(SQUATTER) as port, pytest.raises(RuntimeError, match="taken by another"):
        check(port, monkeypatch)


def test_the_participants_own_server_passes(monkeypatch):
    with listening_as(OWNER) as port:
        check(port, monkeypatch)
