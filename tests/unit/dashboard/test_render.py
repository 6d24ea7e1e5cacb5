"""Rendering: views and summaries with images, HTML and errors; sanitizing; atomic files."""

from __future__ import annotations

import json
import os
import re
from html import unescape
from pathlib import Path

import pytest

from dashboard import render
from dashboard.render import Renderer, atomic_write, safe_path, safe_user
from tests.unit.dashboard.nbfactory import (
    PNG_B64,
    class_notebook,
    code,
    display,
    error,
    markdown,
    notebook,
    result,
    stream,
)

PATH = "day1/intro.ipynb"


@pytest.fixture(scope="module")
def renderer(tmp_path_factory) -> Renderer:
    # Building the exporter is the slow part: one for the module, as in the service.
    return Renderer(tmp_path_factory.mktemp("out"), max_cells=3, max_lines=5,
                    view_link=lambda user, path: f"../view/{user}/{path}")


def body(html: str) -> str:
    return html.split("<main>", 1)[1]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_view_shows_images_tables_streams_and_coloured_tracebacks(renderer):
    content = json.dumps(class_notebook("alice"))
    facts = renderer.render("alice", PATH, content, 1_700_000_000 * 10**9)
    assert (facts.cells, facts.executed, facts.last_error) == (5, 4, True)
    html = renderer.view_file("alice", PATH).read_text()
    main = body(html)
    assert f'<img src="data:image/png;base64,{PNG_B64}"' in main
    assert re.search(r"<table[^>]*>\s*<thead>\s*<tr>\s*<th>name</th>", main)
    assert "<td>alice</td>" in main
    assert "hello" in main
    assert '<span class="ansi-red-fg">ZeroDivisionError</span>' in main
    assert "\x1b[" not in main
    assert "Exercises of alice</h1>" in main
    assert "highlight hl-ipython3" in main  # code is highlighted
    assert '<span class="nb">print</span>' in main
    assert "color: red" not in main  # a participant's <style> is dropped, not shown as text
    assert main.count('class="jp-Cell ') == 5
    assert "2023-11-14 22:13:20 UTC" in main  # the notebook's mtime, not the render time


def test_view_mtime_is_the_notebooks(renderer):
    renderer.render("bob", PATH, json.dumps(class_notebook("bob")), 1_650_000_000_123_456_789)
    assert renderer.view_mtime_ns("bob", PATH) == 1_650_000_000_123_456_789


EVIL = notebook(
    markdown("hi <script>alert('md')</script> <img src=x onerror=alert(1)> "
             "[link](javascript:alert(1)) <iframe src='https://evil.example'></iframe>"),
    code("x", 1,
         display({"text/html": "<b onclick='alert(1)'>bold</b><script>alert(2)</script>"
                               "<a href='javascript:alert(3)'>a</a><form><input></form>"
                               "<img src='https://evil.example/t.png'>"
                               "<svg><script>alert(4)</script></svg>"}),
         display({"application/javascript": "alert(5)"}),
         display({"text/vnd.mermaid": "</pre><script>alert(6)</script>"}),
         display({"image/svg+xml": "<svg onload='alert(7)'></svg>"}),
         display({"text/markdown": "**md**\n\n<script>alert(8)</script>"})),
    {"cell_type": "raw", "source": "<script>alert(9)</script>", "metadata": {}},
    {"cell_type": "code", "source": "y", "metadata": {"tags": ['"><script>alert(10)']},
     "execution_count": "<script>alert(11)</script>", "outputs": []},
)


def test_participant_html_cannot_run_script(renderer):
    renderer.render("mallory", PATH, json.dumps(EVIL), 1)
    html = renderer.view_file("mallory", PATH).read_text()
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<iframe" not in lowered and "<form" not in lowered and "<input" not in lowered
    assert "javascript:" not in lowered
    assert not re.search(r"\son[a-z]+\s*=", lowered)  # no event handler attributes
    assert "evil.example" not in lowered  # no remote loads (trackers)
    # What is harmless still shows.
    main = body(html)
    assert "<b>bold</b>" in main and "<strong>md</strong>" in main
    assert "data:image/svg+xml;base64," in main  # SVG only ever as an <img>
    # And the page itself forbids scripts, should anything slip through.
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert csp and unescape(csp.group(1)) == render.PAGE_CSP
    assert html.index(csp.group(0)) < html.index("<main>")
    assert "script-src" not in render.PAGE_CSP and "default-src 'none'" in render.PAGE_CSP
    assert render.SERVE_HEADERS["Content-Security-Policy"].startswith("sandbox;")


def test_summary_sorted_by_user_with_tails_and_placeholders(tmp_path):
    r = Renderer(tmp_path, max_cells=2, max_lines=3)
    long = code("many", 9, stream("".join(f"row {i}\n" for i in range(1, 11))))
    r.render("zoe", PATH, json.dumps(notebook(markdown("first"), code("a", 1), long)), 1)
    r.render("adam", PATH, json.dumps(notebook()), 2)
    r.render("mia", PATH, "{broken", 3)
    assert r.write_summary(PATH) == 1
    html = r.summary_file(PATH).read_text()
    assert re.findall(r'id="user-(\w+)"', html) == ["adam", "mia", "zoe"]
    zoe = body(html).split('id="user-zoe"')[1]
    assert "first" not in zoe  # only the last 2 cells
    assert "1 earlier cell not shown" in zoe
    assert "row 1\n...\nrow 10" in zoe  # trimmed to 3 lines
    assert "This notebook has no cells yet." in html
    assert "Could not show this notebook: not valid JSON" in html
    # The placeholder page for mia's view says the same, nothing crashed.
    assert "not valid JSON" in r.view_file("mia", PATH).read_text()


def test_status_and_index_carry_facts_and_growing_versions(tmp_path):
    r = Renderer(tmp_path)
    r.render("bob", PATH, json.dumps(notebook(code("1/0", 1, error()))), 5 * 10**9)
    one = notebook(code("1", 1, result(1, {"text/plain": "1"})))
    r.render("amy", "other.ipynb", json.dumps(one), 6)
    assert r.write_summary(PATH) == 1
    assert r.write_summary("other.ipynb") == 1
    r.render("cleo", PATH, json.dumps(one), 7)
    assert r.write_summary(PATH) == 2
    status = json.loads(r.status_file(PATH).read_text())
    assert status["version"] == 2
    assert status["participants"]["bob"] == {
        "cells": 1, "executed": 1, "last_error": True, "problem": None, "mtime": 5.0,
        "saved": "1970-01-01T00:00:05+00:00", "version": 1}
    # Only cleo changed in version 2: a page holding version 1 refetches her alone.
    assert status["participants"]["cleo"]["version"] == 2
    assert "ZeroDivisionError" in r.fragment(PATH, "bob")
    assert "<style" not in r.fragment(PATH, "bob")  # cells only: the page brings styles
    assert r.fragment(PATH, "nobody") is None
    assert r.status(PATH) == status
    # On disk the index is the version alone: a summary written costs its own notebook's
    # participants, never every notebook's (see test_a_summary_rewrites_only_its_own_files).
    assert json.loads((tmp_path / "index.json").read_text()) == {"version": 3}
    assert r.version == 3
    assert sorted(r.index()["notebooks"]) == [PATH, "other.ipynb"]

    # A restarted renderer goes on counting and still knows everyone's fragments.
    again = Renderer(tmp_path)
    assert again.version == 3
    assert again.write_summary(PATH) == 3
    assert again.version == 4
    assert "user-bob" in again.summary_file(PATH).read_text()


def test_summary_links_to_views_when_asked(renderer):
    renderer.render("carl", "links.ipynb", json.dumps(notebook(code("1", 1))), 1)
    renderer.write_summary("links.ipynb")
    assert '<a href="../view/carl/links.ipynb">carl</a>' in renderer.summary_file(
        "links.ipynb").read_text()


def test_forget_removes_a_participant(tmp_path):
    r = Renderer(tmp_path)
    for user in ("a", "b"):
        r.render(user, PATH, json.dumps(notebook(code("1", 1))), 1)
    r.forget("a", PATH)
    r.write_summary(PATH)
    assert list(r.status(PATH)["participants"]) == ["b"]
    assert not r.view_file("a", PATH).exists()
    assert list(r.parts()) == [("b", PATH)]


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "deep" / "page.html"
    atomic_write(target, "one")
    atomic_write(target, b"two", mtime_ns=123_000_000_000)
    assert target.read_text() == "two"
    assert target.stat().st_mtime_ns == 123_000_000_000
    assert leftovers(tmp_path) == []


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    atomic_write(target, "old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render.os, "replace", broken)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_renders_leave_no_temp_files(renderer):
    renderer.write_summary(PATH)
    assert leftovers(renderer.output_dir) == []


def test_a_dead_writers_temp_files_are_cleaned_at_start(tmp_path):
    (tmp_path / "views").mkdir()
    stale = tmp_path / "views" / ".page.html.abc.tmp"
    stale.write_text("half")
    Renderer(tmp_path)
    assert not stale.exists()


@pytest.mark.parametrize("bad", ["/etc/passwd.ipynb", "../x.ipynb", "a/../../x.ipynb",
                                 "a//b.ipynb", "./a.ipynb", "a\\b.ipynb", "notes.txt", ""])
def test_unsafe_paths_are_refused(bad):
    with pytest.raises(ValueError):
        safe_path(bad)


@pytest.mark.parametrize("bad", ["", "..", ".hidden", "a/b", "a\x00"])
def test_unsafe_users_are_refused(bad):
    with pytest.raises(ValueError):
        safe_user(bad)


def test_files_stay_below_the_output_dir(renderer):
    for file in (renderer.view_file("alice", PATH), renderer.summary_file(PATH),
                 renderer.status_file(PATH)):
        assert os.path.commonpath([file, renderer.output_dir]) == str(renderer.output_dir)
    key = render.path_key(PATH)
    assert len(key) == 32 and set(key) <= set("0123456789abcdef")
    assert renderer.view_file("alice", PATH).relative_to(renderer.output_dir).as_posix() == \
        f"views/alice/{key}.html"
    assert renderer.summary_file(PATH).name == f"{key}.html"
    assert renderer.status_file(PATH).name == f"{key}.json"


# -- names nobody can collide with ---------------------------------------------------------
COLLIDING = ["day2.ipynb", "day2.ipynb/alice.json/x.ipynb", "a.ipynb.html/b.ipynb", "a.ipynb",
             "a.ipynb.json/c.ipynb", "views/alice/x.ipynb", "index.json/y.ipynb"]


def test_participants_paths_cannot_turn_output_files_into_folders(tmp_path):
    r = Renderer(tmp_path)
    # Each path would once have needed a folder where another output file is (the part file
    # parts/day2.ipynb/alice.json, the view views/alice/a.ipynb.html, a status .json ...).
    for user in ("alice", "bob"):
        for n, path in enumerate(COLLIDING):
            facts = r.render(user, path, json.dumps(notebook(code(f"'{user} {n}'", 1))), 1)
            assert facts.problem is None, (user, path, facts)
    for path in COLLIDING:
        assert r.write_summary(path) == 1
    for n, path in enumerate(COLLIDING):
        assert sorted(r.status(path)["participants"]) == ["alice", "bob"]
        assert f"alice {n}" in r.view_file("alice", path).read_text()
        assert f"bob {n}" in r.summary_file(path).read_text()
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert not any(path in name for path in COLLIDING for name in names)
    # And after a restart everyone is still where they were.
    again = Renderer(tmp_path)
    assert sorted(again.parts()) == sorted((u, p) for u in ("alice", "bob") for p in COLLIDING)


def test_an_older_layout_is_cleared_and_misplaced_files_ignored(tmp_path):
    old_view = tmp_path / "views" / "alice" / "day1" / "intro.ipynb.html"
    old_status = tmp_path / "summary" / "day1" / "intro.ipynb.json"
    for file in (old_view, old_status):
        file.parent.mkdir(parents=True)
        file.write_text("{}")
    (tmp_path / "index.json").write_text(json.dumps({"version": 7, "notebooks": {}}))
    r = Renderer(tmp_path)
    assert not old_view.exists() and not old_status.exists()
    assert r.version == 7  # open pages keep counting up
    r.render("alice", PATH, json.dumps(notebook(code("1", 1))), 1)
    r.write_summary(PATH)
    # A fragment or status copied under another notebook's name is not believed.
    part = next((tmp_path / "parts").glob("*/alice.json"))
    (tmp_path / "parts" / render.path_key("other.ipynb")).mkdir()
    part.rename(tmp_path / "parts" / render.path_key("other.ipynb") / "alice.json")
    r.status_file(PATH).rename(r.status_file("other.ipynb"))
    again = Renderer(tmp_path)
    assert list(again.parts()) == [] and again.index()["notebooks"] == {}


# -- columns only for notebooks somebody has ----------------------------------------------
def test_the_last_participant_gone_removes_the_summary(tmp_path):
    r = Renderer(tmp_path)
    for user in ("alice", "bob"):
        r.render(user, PATH, json.dumps(notebook(code("1", 1))), 1)
    assert r.write_summary(PATH) == 1
    assert r.forget("alice", PATH) is True
    assert r.write_summary(PATH) == 2
    assert r.forget("alice", PATH) is False  # was not there any more: nothing changes
    assert r.forget("nobody", "never-saved.ipynb") is False
    assert r.forget("bob", PATH) is True
    version = r.version
    assert r.write_summary(PATH) == 0
    assert r.version == version + 1  # the index changed: pages notice the column went
    assert r.status(PATH) is None and r.index()["notebooks"] == {}
    assert not r.summary_file(PATH).exists() and not r.status_file(PATH).exists()
    assert Renderer(tmp_path).index()["notebooks"] == {}  # and it stays gone
    # Writing the summary of a notebook nobody ever had makes no column either.
    assert r.write_summary("ghost.ipynb") == 0
    assert r.index()["notebooks"] == {} and r.version == version + 1


def test_a_summary_rewrites_only_its_own_files(tmp_path):
    r = Renderer(tmp_path)
    paths = [f"n{i}.ipynb" for i in range(20)]
    for path in paths:
        r.render("alice", path, json.dumps(notebook(code("1", 1))), 1)
        r.write_summary(path)
    # Every write replaces the file (atomic_write): a new inode is a write.
    before = {p: p.stat().st_ino for p in tmp_path.rglob("*") if p.is_file()}
    index_size = (tmp_path / "index.json").stat().st_size
    r.render("bob", "n3.ipynb", json.dumps(notebook(code("2", 1))), 2)
    r.write_summary("n3.ipynb")
    changed = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
               if p.is_file() and before.get(p) != p.stat().st_ino}
    key = render.path_key("n3.ipynb")
    assert changed == {f"views/bob/{key}.html", f"parts/{key}/bob.json", f"summary/{key}.html",
                       f"summary/{key}.json", "index.json"}
    assert (tmp_path / "index.json").stat().st_size <= index_size + 1  # not one per column
