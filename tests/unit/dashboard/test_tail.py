"""ipytail: loading untrusted notebooks, the last N cells, outputs trimmed to M lines."""

from __future__ import annotations

import json

import nbformat
import pytest

from dashboard.ipytail import (
    DROPPED,
    ELLIPSIS,
    NotebookError,
    clip_text,
    facts,
    load_notebook,
    tail,
    trim_lines,
    trim_output,
)
from dashboard.limits import Limits
from tests.unit.dashboard.nbfactory import (
    PNG_B64,
    code,
    display,
    error,
    markdown,
    notebook,
    result,
    stream,
)


def numbered(n: int, end: str = "\n") -> str:
    return "".join(f"line {i}{end}" for i in range(1, n + 1))


# -- trim -------------------------------------------------------------------------------
def test_short_text_is_kept_as_is():
    text = numbered(25)
    assert trim_lines(text, 25) == text
    assert trim_lines("", 25) == ""


def test_long_text_is_head_ellipsis_tail_in_max_lines():
    trimmed = trim_lines(numbered(100), 25)
    lines = trimmed.splitlines()
    assert len(lines) == 25
    assert lines[:12] == [f"line {i}" for i in range(1, 13)]
    assert lines[12] == ELLIPSIS == "..."
    assert lines[13:] == [f"line {i}" for i in range(89, 101)]
    assert trimmed.endswith("line 100\n")


def test_trim_counts_lines_not_characters_and_keeps_missing_final_newline():
    trimmed = trim_lines(numbered(26).rstrip("\n"), 25)
    assert len(trimmed.splitlines()) == 25
    assert not trimmed.endswith("\n")
    # Exactly M lines, with or without the final newline, is not trimmed.
    assert ELLIPSIS not in trim_lines(numbered(25).rstrip("\n"), 25)


def test_trim_accepts_text_as_a_list_of_lines():
    as_list = [f"line {i}\n" for i in range(1, 41)]
    assert trim_lines(as_list, 5) == "line 1\nline 2\n...\nline 39\nline 40\n"


def test_carriage_returns_do_not_count_as_lines():
    progress = "".join(f"\r{i}%" for i in range(100)) + "\n"
    assert trim_lines(progress, 3) == progress


def test_trim_output_of_every_kind():
    long = numbered(60)
    out = trim_output(nbformat.from_dict(stream(long)), 5)
    assert out.text.splitlines() == ["line 1", "line 2", "...", "line 59", "line 60"]

    tb = error(traceback=[f"frame {i}" for i in range(30)])
    out = trim_output(nbformat.from_dict(tb), 7)
    assert len(out.traceback) == 1
    assert out.traceback[0].split("\n") == ["frame 0", "frame 1", "frame 2", "...",
                                            "frame 27", "frame 28", "frame 29"]

    res = trim_output(nbformat.from_dict(result(1, {"text/plain": long})), 5)
    assert len(res.data["text/plain"].splitlines()) == 5


def test_trim_output_keeps_outputs_without_text():
    image = display({"image/png": PNG_B64})
    out = trim_output(nbformat.from_dict(image), 3)
    assert out.data == {"image/png": PNG_B64}


def test_long_html_gives_way_to_its_plain_text_else_is_cut():
    rows = "".join(f"<tr><td>{i}</td></tr>\n" for i in range(50))
    both = result(1, {"text/html": f"<table>\n{rows}</table>", "text/plain": numbered(50)})
    out = trim_output(nbformat.from_dict(both), 25)
    assert "text/html" not in out.data
    assert len(out.data["text/plain"].splitlines()) == 25

    html_only = display({"text/html": f"<table>\n{rows}</table>"})
    out = trim_output(nbformat.from_dict(html_only), 25)
    assert len(out.data["text/html"].splitlines()) == 25

    short = result(1, {"text/html": "<b>hi</b>", "text/plain": "hi"})
    assert trim_output(nbformat.from_dict(short), 25).data["text/html"] == "<b>hi</b>"


# -- tail -------------------------------------------------------------------------------
def test_fewer_cells_than_the_limit_are_all_kept():
    nb = load_notebook(notebook(markdown("# one"), code("x = 1", 1), code("x", 2)))
    short = tail(nb, max_cells=10)
    assert [c.source for c in short.cells] == ["# one", "x = 1", "x"]


def test_tail_keeps_the_last_cells_including_markdown():
    cells = [code(f"x = {i}", i) if i % 2 else markdown(f"note {i}") for i in range(1, 16)]
    short = tail(load_notebook(notebook(*cells)), max_cells=4)
    assert [c.source for c in short.cells] == ["note 12", "x = 13", "note 14", "x = 15"]
    assert [c.cell_type for c in short.cells] == ["markdown", "code", "markdown", "code"]


def test_tail_trims_outputs_and_leaves_the_notebook_alone():
    nb = load_notebook(notebook(code("for ...", 1, stream(numbered(100)))))
    short = tail(nb, max_cells=10, max_lines=9)
    assert len(short.cells[0].outputs[0].text.splitlines()) == 9
    assert len(nb.cells[0].outputs[0].text.splitlines()) == 100


def test_tail_of_an_empty_notebook_is_empty():
    assert tail(load_notebook(notebook())).cells == []


def test_tail_limits_must_be_positive():
    with pytest.raises(ValueError):
        tail(load_notebook(notebook()), max_cells=0)


# -- loading ----------------------------------------------------------------------------
def test_text_as_list_or_string_loads_as_string():
    nb = load_notebook(notebook(
        markdown(["# Title\n", "body"]),
        code(["a = 1\n", "a"], 1, stream(["x\n", "y\n"]),
             result(1, {"text/plain": ["1\n", "2"]}))))
    assert nb.cells[0].source == "# Title\nbody"
    assert nb.cells[1].source == "a = 1\na"
    assert nb.cells[1].outputs[0].text == "x\ny\n"
    assert nb.cells[1].outputs[1].data["text/plain"] == "1\n2"


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ("[]", "not an object"),
    ("{}", "nbformat None"),
    (json.dumps({"nbformat": 4, "cells": "no"}), "no list of cells"),
])
def test_unreadable_content_says_why(content, reason):
    with pytest.raises(NotebookError, match=reason):
        load_notebook(content)


def test_loading_drops_code_and_fixes_what_templates_trust():
    nb = load_notebook(notebook(
        code("x", "<script>alert(1)</script>",
             display({"application/javascript": "alert(1)",
                      "application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                      "text/plain": "widget"}),
             display({"image/png": PNG_B64},
                     {"filenames": {"image/png": "javascript:alert(1)"},
                      "image/png": {"width": "100 onload=alert(1)", "height": 20}}),
             display({"application/javascript": "alert(1)"}),
             {"output_type": "nonsense"}),
        {"cell_type": "heading", "source": "old"},
    ))
    assert len(nb.cells) == 1
    cell = nb.cells[0]
    assert cell.execution_count is None
    assert [o.data for o in cell.outputs] == [{"text/plain": "widget"}, {"image/png": PNG_B64}]
    assert cell.outputs[1].metadata == {"image/png": {"height": 20}}


def test_cell_ids_are_made_valid_and_unique():
    cells = [dict(code("a", 1), id="same"), dict(code("b", 2), id="same"),
             dict(code("c", 3), id='"><script>')]
    nb = load_notebook(notebook(*cells))
    assert [c.id for c in nb.cells] == ["same", "cell-1", "cell-2"]
    nbformat.validate(nb)


def test_an_old_nbformat_3_notebook_is_upgraded():
    old = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[
        nbformat.v3.new_code_cell(input="1 + 1", prompt_number=1)])])
    nb = load_notebook(json.dumps(old))
    assert [(c.cell_type, c.source, c.execution_count) for c in nb.cells] == [
        ("code", "1 + 1", 1)]


# -- facts ------------------------------------------------------------------------------
def test_facts_count_executed_cells_and_see_the_last_error():
    nb = load_notebook(notebook(
        markdown("# x"), code("1/0", 2, error()), code("y = 1", 1), code("z", None)))
    assert facts(nb).cells == 4
    assert facts(nb).executed == 2
    # The highest execution count raised, although it is not the last cell on the page.
    assert facts(nb).last_error is True


def test_facts_no_error_when_the_latest_execution_succeeded():
    nb = load_notebook(notebook(code("1/0", 1, error()), code("fixed", 2, stream("ok\n"))))
    assert facts(nb).last_error is False
    assert facts(load_notebook(notebook())).as_dict() == {
        "cells": 0, "executed": 0, "last_error": False, "problem": None}


# -- limits -------------------------------------------------------------------------------
def test_clip_text_keeps_head_and_tail_and_says_how_much_is_gone():
    assert clip_text("short", 10) == "short"
    clipped = clip_text("a" * 50 + "b" * 50, 10)
    assert clipped == "aaaaa\n[… 90 characters not shown …]\nbbbbb"
    assert clip_text("x" * 12_345 + "y", 1).endswith("[… 12 345 characters not shown …]\n")


def test_loading_counts_cells_and_outputs_before_building_anything():
    small = Limits(max_cells=2, max_outputs=3)
    with pytest.raises(NotebookError, match=r"^too large to show: 3 cells \(the dashboard "
                                            r"shows at most 2\)$"):
        load_notebook(notebook(code("a", 1), code("b", 2), code("c", 3)), small)
    with pytest.raises(NotebookError, match="too large to show: 4 outputs"):
        load_notebook(notebook(code("a", 1, *[stream("x")] * 4)), small)
    assert len(load_notebook(notebook(code("a", 1), code("b", 2)), small).cells) == 2


def test_attachments_not_shown_are_dropped_and_noted():
    cell = markdown("![a](attachment:a.png) ![b](attachment:b.pdf)")
    cell["attachments"] = {"a.png": {"image/png": PNG_B64}, "b.pdf": {"application/pdf": "JV"},
                           "c.png": {"image/png": "<svg onload=alert(1)>"}, "d": "nonsense"}
    (loaded,) = load_notebook(notebook(cell)).cells
    assert loaded.attachments == {"a.png": {"image/png": PNG_B64}}
    assert loaded.metadata[DROPPED] == {"b.pdf": "application/pdf is not shown here",
                                        "c.png": "its data is not base64",
                                        "d": "not an attachment"}


def test_tail_with_limits_caps_outputs_per_cell_characters_and_images():
    limits = Limits(summary_outputs=4, summary_text_chars=20, summary_image_chars=200)
    nb = load_notebook(notebook(
        code("s" * 50, 1, *[stream(f"{i}\n") for i in range(9)]),
        code("plot()", 2, display({"image/png": PNG_B64 * 3}), display({"image/png": PNG_B64}))))
    first, second = tail(nb, 10, 25, limits).cells
    assert [o.text for o in first.outputs] == [
        "0\n", "1\n", "[… 5 more outputs not shown …]\n", "7\n", "8\n"]
    assert first.source == "s" * 10 + "\n[… 30 characters not shown …]\n" + "s" * 10
    assert second.outputs[0].data == {
        "text/plain": "[image not shown in the summary: 279 B (the participant's full view "
                      "has it)]"}
    assert second.outputs[1].data == {"image/png": PNG_B64}
    assert len(nb.cells[0].outputs) == 9  # the notebook itself is left alone
