"""Render processes: a notebook over the time or memory limit is a placeholder, and the
process that rendered it is replaced; what comes back is checked, never unpickled."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace

import pytest

from dashboard.convert import Converted
from dashboard.ipytail import Facts
from dashboard.limits import Limits, MiB
from dashboard.renderpool import RenderPool, _decode, _encode
from tests.unit.dashboard.nbfactory import code, display, notebook, stream

SMALL = json.dumps(notebook(code("print('hi')", 1, stream("hi there\n"))))


def pool_with(**limits: object) -> RenderPool:
    options = {"max_cells": 5, "max_lines": 10,
               "limits": replace(Limits(), **limits).as_dict()}
    return RenderPool(options, size=1)


@pytest.fixture
def pool():
    p = pool_with()
    yield p
    p.close()


def test_a_notebook_renders_in_a_process_of_its_own(pool):
    converted = pool.convert(SMALL)
    assert converted.problem is None
    assert "hi there" in converted.view_html and "hi there" in converted.part_html
    assert converted.facts == Facts(cells=1, executed=1)
    assert pool.pids() and os.getpid() not in pool.pids()
    # Bytes, text and a parsed model are all accepted.
    assert pool.convert(SMALL.encode()).view_html == converted.view_html
    assert pool.convert(json.loads(SMALL)).view_html == converted.view_html


def test_a_notebook_over_the_time_limit_is_killed_and_a_placeholder():
    # Sanitizing 800 KB of HTML takes seconds; allowed here, but not the time.
    slow = json.dumps(notebook(code("x", 1, display({"text/html": "<b>x</b>" * 100_000}))))
    p = pool_with(seconds=0.5, view_text_chars=10**7)
    try:
        assert p.convert(SMALL).problem is None
        first = p.pids()
        converted = p.convert(slow)
        assert converted.problem == "took too long to render (over 0.5 s)"
        assert converted.facts.problem == converted.problem
        assert p.killed == 1
        # The next notebook gets a fresh process and renders.
        assert "hi there" in p.convert(SMALL).view_html
        assert p.pids() and p.pids() != first
    finally:
        p.close()


def test_a_notebook_over_the_memory_limit_is_a_placeholder():
    # 3 million tiny cells: about 60 MB of JSON that needs far more as Python objects.
    huge = '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [' + ",".join(
        ['{"cell_type": "raw"}'] * 3_000_000) + "]}"
    p = pool_with(memory_bytes=400 * MiB)
    try:
        converted = p.convert(huge)
        assert converted.problem == ("too large to render: it needs more than 400 MiB of "
                                     "memory")
        assert "hi there" in p.convert(SMALL).view_html  # a fresh process
    finally:
        p.close()


def test_a_process_that_died_between_notebooks_is_replaced(pool):
    assert pool.convert(SMALL).problem is None
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    deadline = time.monotonic() + 10
    while pool.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "hi there" in pool.convert(SMALL).view_html
    assert pool.pids() != [pid]


def test_close_stops_the_processes_and_later_renders_are_placeholders():
    p = pool_with()
    p.convert(SMALL)
    (pid,) = p.pids()
    p.close()
    assert p.pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert p.convert(SMALL).problem == "the dashboard is stopping"


def test_answers_are_checked_before_they_are_believed():
    converted = Converted(facts=Facts(cells=2, executed=1), view_html="<p>é</p>",
                          part_html="<p>p</p>", hidden=1, part_problem="too big")
    assert _decode(_encode(converted)) == (converted, False)
    assert _decode(_encode(Converted.failed("no"), quitting=True))[1] is True
    message = _encode(converted)
    for broken in (message[:-1], message + b"x", b"not json\n", b"{}\n"):
        with pytest.raises((ValueError, KeyError)):
            _decode(broken)
