"""One participant's notebook to HTML cells: the work a render process does.

    converted = convert(content, max_cells=10, max_lines=25, limits=Limits())
    converted.view_html    # every cell, texts clipped: the body of the full view
    converted.part_html    # the last `max_cells` cells, trimmed: their summary fragment
    converted.problem      # set instead when the notebook cannot be shown, says why

`convert` never raises for what a notebook contains: unreadable, too large or strange
content comes back as a `problem`. It only reads its arguments and writes nothing, so it
can run in a process of its own (renderpool.py) that may be killed at any moment.

nbconvert does the HTML, in-process, with one exporter built once: `CellsExporter`
renders JupyterLab's cell markup only, and sanitizes participants' HTML (sanitize.py).
"""

from __future__ import annotations

import functools
import html
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import pass_context
from markupsafe import Markup
from nbconvert import HTMLExporter, TemplateExporter
from nbconvert.filters import Highlight2HTML
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from . import ipytail
from .ipytail import DROPPED, Facts, NotebookError
from .limits import Limits, size_text
from .sanitize import Sanitizer

log = logging.getLogger("dashboard.convert")

ATTACHMENT = "attachment:"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Converted:
    """What a render produced: cells HTML for the view and the summary, or a problem."""

    facts: Facts = field(default_factory=Facts)
    view_html: str = ""
    part_html: str = ""
    hidden: int = 0  # earlier cells not in the summary fragment
    problem: str | None = None  # the notebook cannot be shown (facts.problem says the same)
    part_problem: str | None = None  # only the summary fragment cannot be shown

    @classmethod
    def failed(cls, problem: str) -> Converted:
        return cls(facts=Facts(problem=problem), problem=problem)


class _Markdown(IPythonRenderer):
    """Markdown images named ``attachment:x`` that the cell does not carry (or carried in
    a type the dashboard does not show) become a note instead of failing the notebook."""

    def __init__(self, *, dropped: dict[str, str], **kw: Any) -> None:
        super().__init__(**kw)
        self.dropped = dropped

    def image(self, text: str, url: str, title: str | None = None) -> str:
        if url.startswith(ATTACHMENT) and url[len(ATTACHMENT):] not in self.attachments:
            name = url[len(ATTACHMENT):]
            why = self.dropped.get(name, "the notebook does not have it")
            return (f'<span class="dash-note">[image {html.escape(name[:80])} not shown: '
                    f"{html.escape(why)}]</span>")
        return super().image(text, url, title)


class CellsExporter(HTMLExporter):
    """nbconvert's HTMLExporter without its closing BeautifulSoup pass, and with markdown
    attachments that cannot fail.

    HTMLExporter re-parses its whole output to add image alt texts and tabindex attributes:
    more than half of the time of a render. The pages here do without them.
    """

    def from_notebook_node(self, nb: nbformat.NotebookNode,  # type: ignore[override]
                           resources: dict[str, Any] | None = None,
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name"))
        self.register_filter("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    @pass_context  # as nbconvert's own: the filter needs the cell it renders
    def markdown2html(self, context: Any, source: str) -> str:
        cell = context.get("cell", {})
        renderer = _Markdown(
            dropped=cell.get("metadata", {}).get(DROPPED, {}),
            escape=False, attachments=cell.get("attachments", {}),
            embed_images=False,  # True would read files named by a participant off our disk
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


_EXPORTER_LOCK = threading.Lock()


@functools.cache
def exporter() -> CellsExporter:
    """The one exporter of the process, built on first use: cell markup only."""
    return CellsExporter(
        extra_template_basedirs=[str(TEMPLATES / "nbconvert")],
        template_name="dashboard", template_file="cells.html.j2",
        sanitize_html=True, filters={"clean_html": Sanitizer()},
        embed_images=False,  # True would read files named by a participant off our disk
        exclude_anchor_links=True, optimistic_validation=True)


@functools.cache
def lab_css() -> Markup:
    """JupyterLab's styles as nbconvert's lab template inlines them, taken once."""
    shell, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.v4.new_notebook())
    return Markup("\n".join(re.findall(r"<style[^>]*>.*?</style>", shell, re.S)))


def cells_html(nb: nbformat.NotebookNode) -> str:
    if not nb.cells:
        return ""
    with _EXPORTER_LOCK:  # the exporter and its filters are not thread-safe
        out, _ = exporter().from_notebook_node(nb)
    return out


def convert(content: bytes | str | Any, *, max_cells: int, max_lines: int,
            limits: Limits) -> Converted:
    """Render one notebook's view and summary fragment within `limits`."""
    try:
        nb = ipytail.load_notebook(content, limits)
        facts = ipytail.facts(nb)
        short_nb = ipytail.tail(nb, max_cells, max_lines, limits)
        hidden = len(nb.cells) - len(short_nb.cells)
        view = _encodable(cells_html(ipytail.clip(nb, limits.view_text_chars)))
        if (size := _utf8_size(view)) > limits.view_max_bytes:
            return Converted.failed(f"too large to show: the page would be {size_text(size)}"
                                    f" (the limit is {size_text(limits.view_max_bytes)})")
        part, part_problem = _encodable(cells_html(short_nb)), None
        if (size := _utf8_size(part)) > limits.summary_part_bytes:
            part, part_problem = "", (
                f"its last cells are too large for the summary ({size_text(size)}); "
                "the participant's full view shows them")
    except NotebookError as e:
        return Converted.failed(str(e))
    except MemoryError:
        raise  # the render process answers this one and starts afresh
    except Exception as e:  # nbconvert on a strange notebook: show it, keep going
        log.exception("rendering failed")
        return Converted.failed(f"rendering failed ({type(e).__name__})")
    return Converted(facts=facts, view_html=view, part_html=part, hidden=hidden,
                     part_problem=part_problem)


def _utf8_size(text: str) -> int:
    """Bytes of `text` as written and sent: the limits are in bytes, not characters."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _encodable(text: str) -> str:
    """`text` with lone surrogates (JSON may spell one, "\\ud800") replaced by "?": every
    page is written, and sent between processes, as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
