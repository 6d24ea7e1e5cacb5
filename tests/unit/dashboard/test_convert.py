"""convert: every limit of limits.Limits; markdown attachments that cannot fail a notebook."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape

from dashboard.convert import convert
from dashboard.limits import Limits, MiB
from dashboard.render import Renderer
from tests.unit.dashboard.nbfactory import PNG_B64, code, display, markdown, notebook, stream


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def run(nb: dict | str, **limits: object):
    content = nb if isinstance(nb, str) else json.dumps(nb)
    return convert(content, max_cells=3, max_lines=5, limits=replace(Limits(), **limits))


# -- attachments ------------------------------------------------------------------------
def attached(name: str, bundle: dict | None, text: str | None = None) -> dict:
    cell = markdown(text or f"before ![pic](attachment:{name}) after")
    if bundle is not None:
        cell["attachments"] = {name: bundle}
    return cell


def test_attachments_of_image_types_show_and_others_are_a_note():
    svg = "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4="  # <svg .../>
    nb = notebook(
        attached("a.png", {"image/png": PNG_B64}),
        attached("b.svg", {"image/svg+xml": svg}),
        attached("c.webp", {"image/webp": "UklGRg=="}),
        attached("d.pdf", {"application/pdf": "JVBERi0="}),
        attached("e.png", {"image/png": "not base64 \" onerror=alert(1)"}),
        attached("f.png", None),  # named, not attached
        attached("g.png", {"image/png": PNG_B64},
                 "![two](attachment:g.png) ![x](attachment:h.png)"),
    )
    converted = run(nb)
    assert converted.problem is None and converted.facts.cells == 7
    view = converted.view_html
    assert f'src="data:image/png;base64,{PNG_B64}"' in view
    assert f'src="data:image/svg+xml;base64,{svg}"' in view
    assert 'src="data:image/webp;base64,UklGRg=="' in view
    assert "[image d.pdf not shown: application/pdf is not shown here]" in view
    assert "[image e.png not shown: its data is not base64]" in view
    assert "[image f.png not shown: the notebook does not have it]" in view
    assert "[image h.png not shown: the notebook does not have it]" in view
    assert "onerror" not in view and "attachment:" not in view
    assert view.count("before") == 6 and view.count("after") == 6  # the text around stays


# -- whole-notebook limits ----------------------------------------------------------------
def minimal_cells(n: int) -> str:
    """`n` minimal code cells, as the 5 MiB notebook of the issue."""
    cell = '{"cell_type": "code", "metadata": {}, "execution_count": null, "outputs": [], ' \
           '"source": ""}'
    return ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ['
            + ",".join([cell] * n) + "]}")


def test_too_many_cells_or_outputs_is_a_placeholder_that_says_so():
    converted = run(minimal_cells(100_000))
    assert converted.problem == "too large to show: 100 000 cells (the dashboard shows at most" \
                               " 2 000)"
    assert converted.facts.problem == converted.problem and converted.view_html == ""
    many = notebook(*[code("x", i, stream("a"), stream("b")) for i in range(3)])
    assert run(many, max_outputs=5).problem == ("too large to show: 6 outputs (the dashboard "
                                                "shows at most 5)")
    assert run(minimal_cells(2000)).problem is None


def test_a_20_mib_one_line_output_is_cut_in_the_view_and_the_summary():
    line = "0123456789" * (2 * MiB)  # 20 MiB, one line (and its newline)
    converted = run(notebook(code("print(big)", 1, stream(line + "\n"))))
    assert converted.problem is None
    assert len(converted.view_html) < 200_000  # 100 000 characters of it, and markup
    assert "characters not shown" in converted.view_html
    assert "20 871 521 characters not shown" in converted.view_html
    assert len(converted.part_html) < 10_000  # 4 000 characters of it in the summary
    assert "20 967 521 characters not shown" in converted.part_html


def test_the_summary_caps_outputs_images_and_sources():
    big_png = PNG_B64 * 3000  # 372 000 characters of base64, over the 256 KiB allowed
    nb = notebook(
        code("x = 1\n" * 2000, 1, *[stream(f"out {i}\n") for i in range(30)]),
        code("plot()", 2, display({"image/png": big_png, "text/plain": "<Figure>"})),
        code("table", 3, display({"text/html": "<b>x</b>" * 1000, "text/plain": "a table"})),
    )
    converted = run(nb)
    part, view = converted.part_html, converted.view_html
    assert part.count("out ") == 10 and "20 more outputs not shown" in part
    assert view.count("out ") == 30
    assert "image not shown in the summary: 272 KiB" in part and big_png not in part
    assert big_png in view
    assert "a table" in part and "<b>x</b>" not in part  # cut HTML gives way to its text
    assert "<b>x</b>" in view
    # The 12 000-character source (highlighted: its words are in separate spans).
    assert "[… 8 000 characters not shown …]" in text(part)
    assert "characters not shown" not in text(view)


def test_a_fragment_too_large_for_the_summary_is_a_note_there_only(tmp_path):
    nb = notebook(code("print(1)", 1, stream("y" * 3000)))
    converted = run(nb, summary_part_bytes=2000)
    assert converted.problem is None and converted.facts.executed == 1
    assert converted.part_html == "" and "y" * 3000 in converted.view_html
    assert converted.part_problem.startswith("its last cells are too large for the summary")
    r = Renderer(tmp_path, max_cells=3, max_lines=5)
    r.store("alice", "a.ipynb", converted, 1)
    r.write_summary("a.ipynb")
    assert "its last cells are too large for the summary" in r.summary_file("a.ipynb").read_text()
    assert r.status("a.ipynb")["participants"]["alice"]["problem"] is None


def test_a_view_too_large_is_a_placeholder():
    nb = notebook(*[code("x", i, display({"image/png": PNG_B64})) for i in range(40)])
    converted = run(nb, view_max_bytes=20_000)
    assert converted.problem.startswith("too large to show: the page would be ")
    assert converted.problem.endswith("(the limit is 19 KiB)")


def test_a_lone_surrogate_does_not_break_a_page():
    content = json.dumps(notebook(code("'\\ud800'", 1, stream("a \ud800 b\n"))))
    assert "\\ud800" in content  # JSON allows it; Python's str cannot be UTF-8 with it
    converted = run(content)
    assert converted.problem is None and "a ? b" in converted.view_html
    converted.view_html.encode("utf-8")
