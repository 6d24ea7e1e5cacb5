"""The extension in a real IPython shell (in this process): hooks, records, `%help`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import etc.ipython.workshop_feed as feed
from tests.e2e.hubclient import within

from .fakedash import FakeDashboard


@pytest.fixture
def dashboard() -> Iterator[FakeDashboard]:
    fake = FakeDashboard().start()
    yield fake
    fake.stop()


@pytest.fixture
def shell(dashboard: FakeDashboard, monkeypatch, tmp_path) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("WORKSHOP_EVENTS_URL", dashboard.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "day1" / "intro.ipynb"))
    config = Config()
    config.HistoryManager.enabled = False
    sh = InteractiveShell(config=config)
    feed.load_ipython_extension(sh)
    yield sh
    feed.unload_ipython_extension(sh)
    sh.clear_instance()


def test_every_cell_is_reported_with_its_outcome(shell, dashboard):
    shell.run_cell("x = 21 * 2", store_history=True, cell_id="cell-a")
    shell.run_cell("undefined_name + 1", store_history=True, cell_id="cell-b")
    shell.run_cell("def f(:", store_history=True)  # fails before it runs
    shell.run_cell("x", store_history=False)  # a frontend's own question: not a cell
    within(5, lambda: len(dashboard.executions()) == 3, "three cells reported")
    ok, error, syntax = dashboard.executions()
    assert ok["ok"] is True and ok["cell"] == "cell-a" and ok["path"] == "day1/intro.ipynb"
    assert ok["head"] == "x = 21 * 2" and ok["seq"] == 1 and ok["duration"] >= 0
    assert error["ok"] is False and error["error"]["name"] == "NameError"
    assert "undefined_name" in error["error"]["message"]
    assert syntax["error"]["name"] == "SyntaxError" and syntax["cell"] is None
    assert {p["user"] for p in dashboard.posts} == {"alice"}


def test_the_participants_code_never_sees_the_extension_fail(shell, dashboard, monkeypatch):
    def broken(record):
        raise RuntimeError("sender exploded")

    monkeypatch.setattr(feed.FEED.sender, "add", broken)
    result = shell.run_cell("y = 1", store_history=True)
    assert result.success  # no "Error in callback" for the participant


def test_help_asks_and_says_the_place_in_the_queue(shell, dashboard, capsys):
    dashboard.help_answer = {"open": {"id": 7, "since": "2026-11-22T10:00:00+00:00",
                                      "message": "plot empty", "position": 2, "waiting": 3},
                             "recent": []}
    shell.run_line_magic("help", "my   plot stays empty")
    out = capsys.readouterr().out
    assert "Your instructor has your request" in out and "number 2 of 3" in out
    help_event = [p for p in dashboard.posts if p["type"] == "help"][-1]
    assert help_event == {"type": "help", "user": "alice", "action": "ask",
                          "message": "my plot stays empty", "path": "day1/intro.ipynb"}
    shell.run_line_magic("help", "cancel")
    assert [p for p in dashboard.posts if p["type"] == "help"][-1]["action"] == "cancel"
    dashboard.help_answer = {"open": None, "recent": [
        {"status": "done", "since": "2026-11-22T10:00:00+00:00", "closed_by": "teacher",
         "closed_at": "2026-11-22T10:05:00+00:00"}]}
    shell.run_line_magic("help", "")
    assert "marked done by teacher" in capsys.readouterr().out


def test_help_without_a_dashboard_says_so_quickly(shell, dashboard, capsys):
    dashboard.stop()
    started = time.monotonic()
    shell.run_line_magic("help", "anyone there?")
    assert time.monotonic() - started < 2
    assert "cannot be reached" in capsys.readouterr().out


def test_without_the_hubs_environment_nothing_is_loaded(monkeypatch):
    monkeypatch.delenv("WORKSHOP_EVENTS_URL", raising=False)
    sh = InteractiveShell()
    feed.load_ipython_extension(sh)
    assert feed.FEED is None and "help" not in sh.magics_manager.magics["line"]
    sh.clear_instance()
