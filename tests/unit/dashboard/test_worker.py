"""The render worker: coalescing, shared summaries, catch-up, and reading homes safely."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from dashboard.limits import Limits
from dashboard.render import Renderer, path_key
from dashboard.sources import FileSystemSource, SourceNotebook
from dashboard.worker import Change, RenderWorker
from tests.unit.dashboard.nbfactory import code, display, error, notebook, stream, write

PATH = "day1/intro.ipynb"


class GatedSource(FileSystemSource):
    """Reads from disk, records every read, and can hold reads until released."""

    def __init__(self, home_root: Path) -> None:
        super().__init__(home_root)
        self.reads: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.reading = threading.Event()

    def read(self, user: str, path: str) -> SourceNotebook:
        self.reads.append((user, path))
        self.reading.set()
        assert self.gate.wait(10), "test never released the gate"
        return super().read(user, path)


@pytest.fixture(scope="module")
def renderer_factory(tmp_path_factory):
    def make(out: Path) -> Renderer:
        return Renderer(out, max_cells=5, max_lines=10)
    return make


@pytest.fixture
def homes(tmp_path) -> Path:
    for user in ("alice", "bob", "carol"):
        write(tmp_path / "home" / user / PATH, notebook(code(f"'{user}'", 1, stream(user))))
    return tmp_path / "home"


@pytest.fixture
def worker(tmp_path, homes, renderer_factory):
    # One render thread: the order of renders below is then the order of the queue.
    w = RenderWorker(renderer_factory(tmp_path / "out"), GatedSource(homes), summary_lag=30,
                     processes=1)
    yield w
    w.source.gate.set()
    w.stop()


def test_enqueue_returns_at_once_and_repeats_coalesce(worker):
    changes: list[Change] = []
    worker.add_listener(changes.append)
    worker.source.gate.clear()
    worker.start(catch_up=False)
    worker.enqueue("alice", PATH)
    assert worker.source.reading.wait(5)  # alice is being rendered, held at the gate
    started = time.perf_counter()
    for _ in range(5):
        assert worker.enqueue("bob", PATH)
    for _ in range(3):
        worker.enqueue("carol", PATH)
    assert time.perf_counter() - started < 0.05  # no request thread waits for rendering
    assert worker.queue_length == 2  # bob and carol, once each
    worker.source.gate.set()
    assert worker.wait_idle(10)
    assert worker.source.reads == [("alice", PATH), ("bob", PATH), ("carol", PATH)]
    assert worker.coalesced == 6
    # bob and carol were waiting while alice rendered: the three share one summary.
    assert (worker.renders, worker.summaries) == (3, 1)
    assert [(c.kind, c.user) for c in changes] == [
        ("view", "alice"), ("view", "bob"), ("view", "carol"), ("summary", None)]
    status = worker.renderer.status(PATH)
    assert sorted(status["participants"]) == ["alice", "bob", "carol"]
    assert changes[-1].version == worker.renderer.version == 1


def test_a_save_during_its_own_render_renders_again(worker, homes):
    worker.source.gate.clear()
    worker.start(catch_up=False)
    worker.enqueue("alice", PATH)
    assert worker.source.reading.wait(5)
    # alice saves again while her first save is being rendered: the file may have been
    # read already, so this must not be swallowed.
    write(homes / "alice" / PATH, notebook(code("1/0", 2, error())))
    worker.enqueue("alice", PATH)
    worker.source.gate.set()
    assert worker.wait_idle(10)
    assert worker.source.reads == [("alice", PATH), ("alice", PATH)]
    assert worker.renderer.status(PATH)["participants"]["alice"]["last_error"] is True


def test_summaries_of_other_paths_do_not_wait_for_a_burst(worker, homes):
    write(homes / "alice" / "other.ipynb", notebook(code("1", 1)))
    worker.source.gate.clear()
    worker.start(catch_up=False)
    worker.enqueue("alice", "other.ipynb")
    assert worker.source.reading.wait(5)
    worker.enqueue("bob", PATH)
    worker.source.gate.set()
    assert worker.wait_idle(10)
    assert worker.summaries == 2
    assert worker.renderer.status("other.ipynb")["participants"]["alice"]["executed"] == 1


def test_summary_lag_bounds_how_long_a_burst_can_defer_a_summary(tmp_path, homes,
                                                                  renderer_factory):
    w = RenderWorker(renderer_factory(tmp_path / "out"), GatedSource(homes), summary_lag=0,
                     processes=1)  # one view after the other, as the assertion counts them
    try:
        w.source.gate.clear()
        w.start(catch_up=False)
        w.enqueue("alice", PATH)
        assert w.source.reading.wait(5)
        w.enqueue("bob", PATH)
        w.enqueue("carol", PATH)
        w.source.gate.set()
        assert w.wait_idle(10)
        assert w.summaries == 3  # no lag allowed: a summary after every view
    finally:
        w.stop()


def test_wait_idle_times_out_while_busy_and_stats_show_the_queue(worker):
    worker.source.gate.clear()
    worker.start(catch_up=False)
    worker.enqueue("alice", PATH)
    worker.enqueue("bob", PATH)
    assert worker.source.reading.wait(5)
    assert worker.wait_idle(0.05) is False
    stats = worker.stats()
    assert stats["busy"] is True and stats["queue"] == 1 and stats["last_render"] is None
    worker.source.gate.set()
    assert worker.wait_idle(10)
    stats = worker.stats()
    assert stats["queue"] == 0 and stats["renders"] == 2 and stats["last_render"] > 0
    assert stats["last_duration"] >= 0 and stats["running"] is True


def test_stop_ends_the_thread_and_refuses_new_work(worker):
    worker.start(catch_up=False)
    worker.stop()
    assert worker.stats()["running"] is False
    assert worker.enqueue("alice", PATH) is False


def test_hidden_paths_are_ignored_and_bad_names_refused(worker):
    assert worker.enqueue("alice", ".ipynb_checkpoints/intro-checkpoint.ipynb") is False
    assert worker.enqueue("alice", "day1/.secret/x.ipynb") is False
    with pytest.raises(ValueError):
        worker.enqueue("alice", "../bob/intro.ipynb")
    with pytest.raises(ValueError):
        worker.enqueue("../bob", PATH)
    assert worker.queue_length == 0


def test_broken_and_deleted_notebooks_do_not_stop_the_worker(worker, homes):
    write(homes / "bob" / PATH, '{"cells": [')
    worker.start(catch_up=False)
    worker.enqueue("alice", PATH)
    worker.enqueue("bob", PATH)
    assert worker.wait_idle(10)
    people = worker.renderer.status(PATH)["participants"]
    assert people["bob"]["problem"].startswith("not valid JSON")
    assert people["alice"]["problem"] is None
    (homes / "alice" / PATH).unlink()
    worker.enqueue("alice", PATH)
    assert worker.wait_idle(10)
    assert list(worker.renderer.status(PATH)["participants"]) == ["bob"]
    assert not worker.renderer.view_file("alice", PATH).exists()
    assert worker.errors == 0


def test_catch_up_renders_only_what_is_missing_or_stale(tmp_path, homes, renderer_factory):
    write(homes / "alice" / ".ipynb_checkpoints" / "intro-checkpoint.ipynb", notebook())
    write(homes / "alice" / ".hidden" / "x.ipynb", notebook())
    out = tmp_path / "out"
    first = RenderWorker(renderer_factory(out), GatedSource(homes)).start()
    assert first.wait_idle(10)
    first.stop()
    assert sorted(first.source.reads) == [("alice", PATH), ("bob", PATH), ("carol", PATH)]
    assert first.renderer.summary_file(PATH).exists()

    # While the dashboard was down: bob saved, dave arrived, carol's view got lost,
    # alice deleted her notebook.
    bob = homes / "bob" / PATH
    write(bob, notebook(code("1/0", 7, error())))
    os.utime(bob, ns=(time.time_ns() + 10**9,) * 2)
    write(homes / "dave" / "day2" / "new.ipynb", notebook(code("x", 1)))
    first.renderer.view_file("carol", PATH).unlink()
    (homes / "alice" / PATH).unlink()

    again = RenderWorker(renderer_factory(out), GatedSource(homes)).start()
    try:
        assert again.wait_idle(10)
        assert sorted(again.source.reads) == [("bob", PATH), ("carol", PATH),
                                              ("dave", "day2/new.ipynb")]
        status = again.renderer.status(PATH)
        assert sorted(status["participants"]) == ["bob", "carol"]
        assert status["participants"]["bob"]["last_error"] is True
        assert again.renderer.status("day2/new.ipynb")["participants"]["dave"]["executed"] == 1
        assert again.catch_up() == 0  # now everything is fresh
    finally:
        again.stop()


def test_catch_up_rewrites_a_missing_summary_without_rendering_views(tmp_path, homes,
                                                                      renderer_factory):
    out = tmp_path / "out"
    first = RenderWorker(renderer_factory(out), GatedSource(homes)).start()
    assert first.wait_idle(10)
    first.stop()
    summary = first.renderer.summary_file(PATH)
    summary.unlink()
    again = RenderWorker(renderer_factory(out), GatedSource(homes)).start()
    try:
        assert again.wait_idle(10)
        assert again.source.reads == []
        assert "user-carol" in summary.read_text()
    finally:
        again.stop()


def test_catch_up_rewrites_a_summary_older_than_its_fragments(tmp_path, homes,
                                                            renderer_factory):
    # Killed (-9) between a participant's view and the summary that follows it by
    # `summary_lag`: view and fragment are current, the summary still shows the save
    # before. Nothing re-renders (nothing is stale), so only catch-up can notice.
    out = tmp_path / "out"
    first = RenderWorker(renderer_factory(out), GatedSource(homes)).start()
    assert first.wait_idle(10)
    first.stop()
    bob = homes / "bob" / PATH
    write(bob, notebook(code("1/0", 7, error())))
    mtime = time.time_ns() + 10**9
    os.utime(bob, ns=(mtime, mtime))
    renderer = renderer_factory(out)
    renderer.render("bob", PATH, bob.read_bytes(), mtime)  # and no write_summary: killed
    assert renderer.status(PATH)["participants"]["bob"]["mtime"] != mtime / 1e9

    again = RenderWorker(renderer_factory(out), GatedSource(homes)).start()
    try:
        assert again.wait_idle(10)
        assert again.source.reads == []  # the views were current: none rendered again
        facts = again.renderer.status(PATH)["participants"]["bob"]
        assert facts["mtime"] == mtime / 1e9 and facts["last_error"] is True
    finally:
        again.stop()


def test_rescans_pick_up_notebooks_changed_without_a_save_event(tmp_path, homes,
                                                                renderer_factory):
    w = RenderWorker(renderer_factory(tmp_path / "out"), GatedSource(homes),
                     rescan_interval=0.05)
    try:
        w.start(catch_up=False)
        assert w.wait_idle(5)
        write(homes / "erin" / "git-pulled.ipynb", notebook(code("x", 1)))
        deadline = time.monotonic() + 10
        while w.renderer.status("git-pulled.ipynb") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert w.renderer.status("git-pulled.ipynb")["participants"]["erin"]["executed"] == 1
    finally:
        w.stop()
    assert w.stats()["running"] is False


# -- fairness and isolation --------------------------------------------------------------
def test_participants_take_turns_instead_of_first_come_first_served(worker, homes):
    for n in range(6):
        write(homes / "mallory" / f"m{n}.ipynb", notebook(code("1", 1)))
    worker.source.gate.clear()
    worker.start(catch_up=False)
    for n in range(6):
        worker.enqueue("mallory", f"m{n}.ipynb")  # saves six notebooks in a row
    assert worker.source.reading.wait(5)
    worker.enqueue("alice", PATH)
    worker.enqueue("bob", PATH)
    worker.source.gate.set()
    assert worker.wait_idle(30)
    order = [user for user, _ in worker.source.reads]
    # alice and bob wait for at most one more of mallory's, not for all five.
    assert order == ["mallory", "mallory", "alice", "bob", "mallory", "mallory", "mallory",
                     "mallory"]


def test_one_participant_renders_one_notebook_at_a_time(tmp_path, homes, renderer_factory):
    for n in range(3):
        write(homes / "mallory" / f"m{n}.ipynb", notebook(code("1", 1)))
    source = GatedSource(homes)
    w = RenderWorker(renderer_factory(tmp_path / "out"), source, summary_lag=0, processes=2)
    try:
        source.gate.clear()
        w.start(catch_up=False)
        for n in range(3):
            w.enqueue("mallory", f"m{n}.ipynb")
        assert source.reading.wait(5)
        w.enqueue("alice", PATH)
        deadline = time.monotonic() + 5
        while len(source.reads) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # mallory's first notebook holds one thread; the other takes alice, not mallory.
        assert source.reads == [("mallory", "m0.ipynb"), ("alice", PATH)]
        source.gate.set()
        assert w.wait_idle(30)
        assert len(source.reads) == 4
    finally:
        source.gate.set()
        w.stop()


def test_a_notebook_over_a_limit_is_a_placeholder_while_the_others_update(tmp_path, homes):
    slow = notebook(code("x", 1, display({"text/html": "<b>x</b>" * 100_000})))
    write(homes / "mallory" / PATH, slow)  # sanitizing it takes seconds
    write(homes / "mallory" / "cells.ipynb", {**notebook(), "cells": [code("", None)] * 3000})
    limits = Limits(seconds=1.0, view_text_chars=10**7)
    w = RenderWorker(Renderer(tmp_path / "out", limits=limits), FileSystemSource(homes),
                     summary_lag=0, processes=2)
    views: list[tuple[str, float]] = []
    w.add_listener(lambda c: views.append((c.user, time.monotonic()))
                   if c.kind == "view" else None)
    try:
        w.start(catch_up=False)
        assert w.wait_idle(60) and w.pool.convert(notebook()).problem is None  # warm
        started = time.monotonic()
        w.enqueue("mallory", PATH)
        time.sleep(0.1)  # mallory's notebook is in a render process now
        for user in ("alice", "bob", "carol"):
            w.enqueue(user, PATH)
        w.enqueue("mallory", "cells.ipynb")
        assert w.wait_idle(60)
    finally:
        w.stop()
    done = dict(views)
    # Everybody else was shown before mallory's render was given up.
    assert max(done[u] for u in ("alice", "bob", "carol")) < done["mallory"]
    assert done["mallory"] - started >= 1.0
    people = w.renderer.status(PATH)["participants"]
    assert people["mallory"]["problem"] == "took too long to render (over 1 s)"
    assert all(people[u]["problem"] is None for u in ("alice", "bob", "carol"))
    summary = w.renderer.summary_file(PATH).read_text()
    assert "Could not show this notebook: took too long to render (over 1 s)" in summary
    assert w.renderer.status("cells.ipynb")["participants"]["mallory"]["problem"] == (
        "too large to show: 3 000 cells (the dashboard shows at most 2 000)")
    assert w.stats()["killed"] == 1


# -- columns only for notebooks that exist -----------------------------------------------
def test_saves_of_notebooks_nobody_has_make_no_columns(worker, homes):
    worker.start(catch_up=False)
    for n in range(300):
        assert worker.enqueue("alice", f"made-up/{n}<b>name</b>.ipynb")
    assert worker.wait_idle(30)
    assert worker.renderer.index()["notebooks"] == {}
    assert worker.summaries == 0 and worker.renderer.version == 0
    assert not (worker.renderer.output_dir / "summary").exists()


def test_a_column_goes_when_nobody_has_the_notebook_any_more(worker, homes, tmp_path,
                                                             renderer_factory):
    worker.start(catch_up=False)
    write(homes / "alice" / "solo.ipynb", notebook(code("1", 1)))
    worker.enqueue("alice", "solo.ipynb")
    assert worker.wait_idle(10)
    assert "solo.ipynb" in worker.renderer.index()["notebooks"]
    (homes / "alice" / "solo.ipynb").unlink()
    worker.enqueue("alice", "solo.ipynb")
    assert worker.wait_idle(10)
    assert "solo.ipynb" not in worker.renderer.index()["notebooks"]
    worker.stop()
    # A column left by an older version with nobody in it goes at the next catch-up.
    stale = {"path": "stale.ipynb", "version": 3, "participants": {}}
    (tmp_path / "out" / "summary" / f"{path_key('stale.ipynb')}.json").write_text(
        json.dumps(stale))
    again = RenderWorker(renderer_factory(tmp_path / "out"), GatedSource(homes)).start()
    try:
        assert again.wait_idle(10)
        assert "stale.ipynb" not in again.renderer.index()["notebooks"]
    finally:
        again.stop()
