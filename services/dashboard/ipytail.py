"""Participants' notebooks as the dashboard sees them: loaded defensively, tailed, trimmed.

A participant's notebook is untrusted input. `load_notebook` never hands the renderer the
document as written: it rebuilds a fresh nbformat v4.5 notebook from an allowlist of
cell types, output types, mimetypes and metadata keys, with every text field a string
(nbformat allows a list of strings) and every prompt number an int. Whatever else the file
carries (widget state, javascript, output filenames, odd metadata) is dropped here, before
any template sees it.

`tail` is the "ipytail" summary of one participant: the last `max_cells` cells, each
output trimmed to `max_lines` lines as head + a ``...`` line + tail. `facts` are the
numbers the index page shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

ELLIPSIS = "..."

# What survives loading. Everything else in an output's data is dropped: javascript and
# widget views would be code, and the templates render these few safely.
KEPT_MIMETYPES = (
    "text/plain", "text/html", "text/markdown", "text/latex",
    "image/png", "image/jpeg", "image/svg+xml",
)
ATTACHMENT_MIMETYPES = ("image/png", "image/jpeg", "image/gif")
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.+#-]{1,64}$")
_CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class NotebookError(ValueError):
    """The content is not a notebook the dashboard can show; the message says why."""


@dataclass(frozen=True)
class Facts:
    """What the index page shows about one participant's copy of a notebook."""

    cells: int = 0
    executed: int = 0  # code cells with an execution count
    last_error: bool = False  # the cell with the highest execution count has an error output
    problem: str | None = None  # set when the notebook could not be read or rendered

    def as_dict(self) -> dict[str, Any]:
        return {"cells": self.cells, "executed": self.executed,
                "last_error": self.last_error, "problem": self.problem}


def as_text(value: Any) -> str:
    """nbformat allows multi-line strings as a list of lines: always give one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def load_notebook(content: bytes | str | Mapping[str, Any]) -> NotebookNode:
    """Parse and rebuild a notebook from untrusted content; raise NotebookError if impossible."""
    data: Any = content
    if isinstance(content, bytes | str):
        try:
            data = json.loads(content.decode("utf-8") if isinstance(content, bytes) else content)
        except UnicodeDecodeError as e:
            raise NotebookError(f"not UTF-8 text ({e.reason})") from None
        except json.JSONDecodeError as e:
            raise NotebookError(f"not valid JSON: {e.msg} (line {e.lineno}, "
                                f"column {e.colno})") from None
    if not isinstance(data, Mapping):
        raise NotebookError("not a notebook: the JSON document is not an object")
    major = data.get("nbformat")
    if major in (1, 2, 3):
        try:  # nbformat's own upgrade path for old notebooks
            data = nbformat.convert(nbformat.from_dict(dict(data)), 4)
        except Exception as e:
            raise NotebookError(f"could not upgrade nbformat {major} notebook: {e}") from None
    elif major != 4:
        raise NotebookError(f"not a notebook: nbformat {major!r} is not supported")
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise NotebookError("not a notebook: no list of cells")
    # Plain dicts, one conversion at the end: nbformat.v4.new_* validate every node
    # against the schema, which costs more than the rest of loading.
    seen: set[str] = set()
    cleaned = (_clean_cell(raw, i, seen) for i, raw in enumerate(cells))
    clean_cells = [c for c in cleaned if c is not None]
    return nbformat.from_dict({
        "nbformat": 4, "nbformat_minor": 5, "cells": clean_cells,
        "metadata": _clean_nb_metadata(data.get("metadata")),
    })


def _clean_nb_metadata(metadata: Any) -> dict[str, Any]:
    info = metadata.get("language_info") if isinstance(metadata, Mapping) else None
    kept = {}
    if isinstance(info, Mapping):
        for key in ("name", "pygments_lexer"):
            value = info.get(key)
            if isinstance(value, str) and _SAFE_TOKEN.match(value):
                kept[key] = value
    return {"language_info": kept} if kept else {}


def _clean_cell(raw: Any, index: int, seen: set[str]) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping) or raw.get("cell_type") not in ("code", "markdown", "raw"):
        return None
    cell_id = raw.get("id")
    if not isinstance(cell_id, str) or not _CELL_ID.match(cell_id) or cell_id in seen:
        cell_id = f"cell-{index}"
    seen.add(cell_id)
    meta = raw.get("metadata")
    tags = meta.get("tags") if isinstance(meta, Mapping) else None
    metadata: dict[str, Any] = {}
    if isinstance(tags, list):
        metadata["tags"] = [t for t in tags if isinstance(t, str) and _SAFE_TOKEN.match(t)]
    kind = raw["cell_type"]
    cell: dict[str, Any] = {"id": cell_id, "cell_type": kind, "metadata": metadata,
                            "source": as_text(raw.get("source"))}
    if kind == "markdown":
        attachments = _clean_attachments(raw.get("attachments"))
        if attachments:
            cell["attachments"] = attachments
    elif kind == "code":
        outputs = raw.get("outputs")
        cell["execution_count"] = _count(raw.get("execution_count"))
        cleaned = (_clean_output(o) for o in (outputs if isinstance(outputs, list) else []))
        cell["outputs"] = [o for o in cleaned if o is not None]
    return cell


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _clean_attachments(raw: Any) -> dict[str, dict[str, str]]:
    kept: dict[str, dict[str, str]] = {}
    if not isinstance(raw, Mapping):
        return kept
    for name, bundle in raw.items():
        if isinstance(name, str) and isinstance(bundle, Mapping):
            data = {m: as_text(bundle[m]) for m in ATTACHMENT_MIMETYPES if m in bundle}
            if data:
                kept[name] = data
    return kept


def _clean_output(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    kind = raw.get("output_type")
    if kind == "stream":
        name = raw.get("name") if raw.get("name") in ("stdout", "stderr") else "stdout"
        return {"output_type": "stream", "name": name, "text": as_text(raw.get("text"))}
    if kind == "error":
        traceback = raw.get("traceback")
        lines = [t for t in traceback if isinstance(t, str)] if isinstance(traceback, list) else []
        return {"output_type": "error", "ename": as_text(raw.get("ename")),
                "evalue": as_text(raw.get("evalue")), "traceback": lines}
    if kind not in ("execute_result", "display_data"):
        return None
    bundle = raw.get("data")
    if not isinstance(bundle, Mapping):
        return None
    data = {m: as_text(bundle[m]) for m in KEPT_MIMETYPES if m in bundle}
    if not data:
        return None
    out = {"output_type": kind, "data": data, "metadata": _clean_output_metadata(raw)}
    if kind == "execute_result":
        out["execution_count"] = _count(raw.get("execution_count"))
    return out


def _clean_output_metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    # Only the image sizing hints the templates use; never "filenames" (a URL into the page).
    meta = raw.get("metadata")
    kept: dict[str, Any] = {}
    for mime in ("image/png", "image/jpeg"):
        hints = meta.get(mime) if isinstance(meta, Mapping) else None
        if not isinstance(hints, Mapping):
            continue
        clean: dict[str, Any] = {}
        for key in ("width", "height"):
            value = hints.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                clean[key] = int(value)
        if hints.get("needs_background") in ("light", "dark"):
            clean["needs_background"] = hints["needs_background"]
        if hints.get("unconfined") is True:
            clean["unconfined"] = True
        if clean:
            kept[mime] = clean
    return kept


def _split(text: str) -> list[str]:
    # Lines end at "\n" only: a progress bar's "\r" does not make a new line.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def trim_lines(text: str | list[str], max_lines: int) -> str:
    """At most `max_lines` lines: the first ones, a ``...`` line, the last ones."""
    text = as_text(text)
    lines = _split(text)
    if len(lines) <= max_lines:
        return text
    keep = max_lines - 1
    head, tail = keep - keep // 2, keep // 2
    kept = [*lines[:head], ELLIPSIS, *(lines[-tail:] if tail else [])]
    return "\n".join(kept) + ("\n" if text.endswith("\n") else "")


def _line_count(text: str) -> int:
    return len(_split(text))


def trim_output(output: NotebookNode, max_lines: int) -> NotebookNode:
    """A copy of `output` whose text is at most `max_lines` lines; images are kept whole."""
    out = nbformat.from_dict(output)
    kind = out.get("output_type")
    if kind == "stream":
        out.text = trim_lines(out.get("text", ""), max_lines)
    elif kind == "error":
        # One string, so ANSI colours that span lines survive the trim.
        joined = "\n".join(as_text(t) for t in out.get("traceback", []))
        out.traceback = [trim_lines(joined, max_lines)] if joined else []
    elif kind in ("execute_result", "display_data"):
        data = out.get("data", {})
        html = as_text(data.get("text/html", ""))
        if _line_count(html) > max_lines and "text/plain" in data:
            # Cutting HTML by lines breaks its structure: show the plain form instead.
            del data["text/html"]
        for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
            if mime in data:
                data[mime] = trim_lines(data[mime], max_lines)
    return out


def tail(nb: NotebookNode, max_cells: int = 10, max_lines: int = 25) -> NotebookNode:
    """The last `max_cells` cells of `nb`, every output trimmed to `max_lines` lines."""
    if max_cells < 1 or max_lines < 1:
        raise ValueError("max_cells and max_lines must be at least 1")
    short = nbformat.from_dict({"nbformat": 4, "nbformat_minor": nb.get("nbformat_minor", 5),
                                "metadata": nb.get("metadata", {}), "cells": []})
    for cell in nb.get("cells", [])[-max_cells:]:
        copy = nbformat.from_dict(dict(cell))
        if copy.get("cell_type") == "code":
            copy.outputs = [trim_output(o, max_lines) for o in cell.get("outputs", [])]
        short.cells.append(copy)
    return short


def facts(nb: NotebookNode) -> Facts:
    """Cells, executed cells, and whether the last executed cell raised."""
    executed = [c for c in nb.get("cells", [])
                if c.get("cell_type") == "code" and _count(c.get("execution_count")) is not None]
    last_error = False
    if executed:
        last = max(executed, key=lambda c: c["execution_count"])
        last_error = any(o.get("output_type") == "error" for o in last.get("outputs", []))
    return Facts(cells=len(nb.get("cells", [])), executed=len(executed), last_error=last_error)
