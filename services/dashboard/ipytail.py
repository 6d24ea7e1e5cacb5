"""Participants' notebooks as the dashboard sees them: loaded defensively, tailed, trimmed.

A participant's notebook is untrusted input. `load_notebook` never hands the renderer the
document as written: it rebuilds a fresh nbformat v4.5 notebook from an allowlist of
cell types, output types, mimetypes and metadata keys, with every text field a string
(nbformat allows a list of strings) and every prompt number an int. Whatever else the file
carries (widget state, javascript, output filenames, odd metadata) is dropped here, before
any template sees it.

Loading also enforces the whole-notebook limits (limits.Limits: cells, outputs): a
notebook over them is a `NotebookError` that says so ("too large to show: 100 000 cells"),
found before anything is rebuilt. Markdown attachments of a type not shown, or not
base64, are dropped and noted in the cell's metadata (`DROPPED`); the renderer shows the
note where the image was, as it does for an attachment the cell names but does not have.

`tail` is the "ipytail" summary of one participant: the last `max_cells` cells, each
output trimmed to `max_lines` lines as head + a ``...`` line + tail, and (with `Limits`)
to a number of characters, outputs per cell and image size. `clip` cuts the texts of the
full view. `facts` are the numbers the index page shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

from .limits import Limits, number_text, size_text

ELLIPSIS = "..."

# What survives loading. Everything else in an output's data is dropped: javascript and
# widget views would be code, and the templates render these few safely.
KEPT_MIMETYPES = (
    "text/plain", "text/html", "text/markdown", "text/latex",
    "image/png", "image/jpeg", "image/svg+xml",
)
# Shown as <img src="data:..."> (where an SVG cannot run script); anything else is dropped.
ATTACHMENT_MIMETYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
DROPPED = "dashboard_dropped_attachments"  # cell metadata: {name: why it is not shown}
MAX_ATTACHMENT_NAME = 200  # characters; a longer name is not a file name anyone typed
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
TEXT_MIMETYPES = ("text/plain", "text/html", "text/markdown", "text/latex")
IMAGE_MIMETYPES = ("image/png", "image/jpeg", "image/svg+xml")
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


def load_notebook(content: bytes | str | Mapping[str, Any],
                  limits: Limits | None = None) -> NotebookNode:
    """Parse and rebuild a notebook from untrusted content; raise NotebookError if impossible
    or over the whole-notebook `limits` (the dashboard's by default)."""
    limits = limits or Limits()
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
    _check_size(cells, limits)
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
        attachments, dropped = _clean_attachments(raw.get("attachments"))
        if attachments:
            cell["attachments"] = attachments
        if dropped:
            metadata[DROPPED] = dropped
    elif kind == "code":
        outputs = raw.get("outputs")
        cell["execution_count"] = _count(raw.get("execution_count"))
        cleaned = (_clean_output(o) for o in (outputs if isinstance(outputs, list) else []))
        cell["outputs"] = [o for o in cleaned if o is not None]
    return cell


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _check_size(cells: list[Any], limits: Limits) -> None:
    """The whole-notebook limits, counted on the parsed JSON before anything is built."""
    if len(cells) > limits.max_cells:
        raise NotebookError(f"too large to show: {number_text(len(cells))} cells (the "
                            f"dashboard shows at most {number_text(limits.max_cells)})")
    outputs = sum(len(c["outputs"]) for c in cells
                  if isinstance(c, Mapping) and isinstance(c.get("outputs"), list))
    if outputs > limits.max_outputs:
        raise NotebookError(f"too large to show: {number_text(outputs)} outputs (the "
                            f"dashboard shows at most {number_text(limits.max_outputs)})")


def _clean_attachments(raw: Any) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The attachments shown, and the names of those dropped with the reason."""
    kept: dict[str, dict[str, str]] = {}
    dropped: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        return kept, dropped
    for name, bundle in raw.items():
        if not isinstance(name, str) or not name or len(name) > MAX_ATTACHMENT_NAME:
            continue
        if not isinstance(bundle, Mapping):
            dropped[name] = "not an attachment"
            continue
        shown = {m: as_text(bundle[m]) for m in ATTACHMENT_MIMETYPES if m in bundle}
        data = {m: v for m, v in shown.items() if v and _BASE64.match(v)}
        if data:
            kept[name] = data
        elif shown:
            dropped[name] = "its data is not base64"
        else:
            kinds = ", ".join(str(m)[:40] for m in list(bundle)[:3]) or "no data"
            dropped[name] = f"{kinds} is not shown here"
    return kept, dropped


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


def clip_text(text: str, max_chars: int) -> str:
    """At most about `max_chars` characters: the first ones, a note, the last ones."""
    if len(text) <= max_chars:
        return text
    head, tail_ = max_chars - max_chars // 2, max_chars // 2
    note = f"\n[… {number_text(len(text) - head - tail_)} characters not shown …]\n"
    return text[:head] + note + (text[-tail_:] if tail_ else "")


def _clip_bundle(data: dict[str, Any], max_chars: int) -> None:
    html = data.get("text/html")
    if isinstance(html, str) and len(html) > max_chars and "text/plain" in data:
        # Cutting HTML breaks its structure: show the plain form instead.
        del data["text/html"]
    for mime in TEXT_MIMETYPES:
        if isinstance(data.get(mime), str):
            data[mime] = clip_text(data[mime], max_chars)


def trim_output(output: NotebookNode, max_lines: int,
                limits: Limits | None = None) -> NotebookNode:
    """A copy of `output` whose text is at most `max_lines` lines (and, with `limits`,
    `summary_text_chars` characters); images are kept whole unless over
    `limits.summary_image_chars`, then they are a note."""
    out = nbformat.from_dict(output)
    kind = out.get("output_type")
    chars = limits.summary_text_chars if limits else None
    if kind == "stream":
        out.text = trim_lines(out.get("text", ""), max_lines)
        if chars:
            out.text = clip_text(out.text, chars)
    elif kind == "error":
        # One string, so ANSI colours that span lines survive the trim.
        joined = "\n".join(as_text(t) for t in out.get("traceback", []))
        trimmed = trim_lines(joined, max_lines)
        out.traceback = [clip_text(trimmed, chars) if chars else trimmed] if joined else []
    elif kind in ("execute_result", "display_data"):
        data = out.get("data", {})
        html = as_text(data.get("text/html", ""))
        if _line_count(html) > max_lines and "text/plain" in data:
            # Cutting HTML by lines breaks its structure: show the plain form instead.
            del data["text/html"]
        for mime in TEXT_MIMETYPES:
            if mime in data:
                data[mime] = trim_lines(data[mime], max_lines)
        if chars:
            _clip_bundle(data, chars)
        if limits:
            _drop_large_images(out, limits.summary_image_chars)
    return out


def _drop_large_images(out: NotebookNode, max_chars: int) -> None:
    data = out.get("data", {})
    size = max((len(as_text(data[m])) for m in IMAGE_MIMETYPES if m in data), default=0)
    if size > max_chars:
        out.data = {"text/plain": f"[image not shown in the summary: {size_text(size * 3 // 4)}"
                                  " (the participant's full view has it)]"}
        out.metadata = {}


def _first_and_last(items: list[Any], keep: int | None) -> list[Any]:
    """At most `keep` of `items`: the first half and the last half."""
    if keep is None or len(items) <= keep:
        return list(items)
    return [*items[:keep - keep // 2], *(items[-(keep // 2):] if keep // 2 else [])]


def _outputs_note(hidden: int) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout",
            "text": f"[… {number_text(hidden)} more outputs not shown …]\n"}


def tail(nb: NotebookNode, max_cells: int = 10, max_lines: int = 25,
         limits: Limits | None = None) -> NotebookNode:
    """The last `max_cells` cells of `nb`, every output trimmed to `max_lines` lines; with
    `limits` also the summary's characters, outputs per cell and image size."""
    if max_cells < 1 or max_lines < 1:
        raise ValueError("max_cells and max_lines must be at least 1")
    short = nbformat.from_dict({"nbformat": 4, "nbformat_minor": nb.get("nbformat_minor", 5),
                                "metadata": nb.get("metadata", {}), "cells": []})
    for cell in nb.get("cells", [])[-max_cells:]:
        copy = nbformat.from_dict(dict(cell))
        if limits:
            copy.source = clip_text(copy.get("source", ""), limits.summary_text_chars)
        if copy.get("cell_type") == "code":
            outputs = [trim_output(o, max_lines, limits) for o in _first_and_last(
                cell.get("outputs", []), limits.summary_outputs if limits else None)]
            if limits and len(cell.get("outputs", [])) > limits.summary_outputs:
                hidden = len(cell["outputs"]) - limits.summary_outputs
                outputs.insert(limits.summary_outputs - limits.summary_outputs // 2,
                               nbformat.from_dict(_outputs_note(hidden)))
            copy.outputs = outputs
        short.cells.append(copy)
    return short


def clip(nb: NotebookNode, max_chars: int) -> NotebookNode:
    """`nb` for the full view: every source and output text at most about `max_chars`
    characters (head, a note, tail). Changes `nb` itself; images are left whole."""
    for cell in nb.get("cells", []):
        cell.source = clip_text(cell.get("source", ""), max_chars)
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                out.text = clip_text(out.get("text", ""), max_chars)
            elif kind == "error":
                joined = "\n".join(as_text(t) for t in out.get("traceback", []))
                if len(joined) > max_chars:
                    out.traceback = [clip_text(joined, max_chars)]
            elif kind in ("execute_result", "display_data"):
                _clip_bundle(out.get("data", {}), max_chars)
    return nb


def facts(nb: NotebookNode) -> Facts:
    """Cells, executed cells, and whether the last executed cell raised."""
    executed = [c for c in nb.get("cells", [])
                if c.get("cell_type") == "code" and _count(c.get("execution_count")) is not None]
    last_error = False
    if executed:
        last = max(executed, key=lambda c: c["execution_count"])
        last_error = any(o.get("output_type") == "error" for o in last.get("outputs", []))
    return Facts(cells=len(nb.get("cells", [])), executed=len(executed), last_error=last_error)
