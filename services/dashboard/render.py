"""Participants' notebooks to HTML: nbconvert in-process, one exporter, atomic files.

Output layout below `output_dir` (everything here can be rebuilt from the homes)::

    views/<user>/<path>.html     one participant's notebook, a full page
    summary/<path>.html          the summary ("ipytail") of one notebook name, everyone
    summary/<path>.json          its status: version + each participant's facts (and the
                                 version in which they last changed)
    index.json                   every notebook name's status and a global version
    parts/<path>/<user>.json     cache of one participant's summary fragment and facts

`<path>` is the notebook's path relative to the home, e.g. ``day1/intro.ipynb`` gives
``views/alice/day1/intro.ipynb.html``. Users and paths are checked (`safe_user`,
`safe_path`): no absolute paths, no ``..``. Every file is written to a temporary file in
its own directory and moved into place with `os.replace`, so a reader sees the old file or
the new one, never half of one. A view's mtime is set to its notebook's mtime, so a view
older than its notebook is stale (see worker.RenderWorker.catch_up).

Participants' notebooks are untrusted: see sanitize.py for how they are kept from running
anything in the instructor's browser, and which headers the files must be served with.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
import nbformat
from markupsafe import Markup
from nbconvert import HTMLExporter, TemplateExporter
from nbconvert.filters import Highlight2HTML

from . import ipytail
from .ipytail import Facts, NotebookError
from .sanitize import PAGE_CSP, SERVE_HEADERS, Sanitizer

__all__ = ["PAGE_CSP", "SERVE_HEADERS", "Renderer", "atomic_write", "exporter", "lab_css",
           "safe_path", "safe_user"]

log = logging.getLogger("dashboard.render")

TEMPLATES = Path(__file__).parent / "templates"


class CellsExporter(HTMLExporter):
    """nbconvert's HTMLExporter without its closing BeautifulSoup pass.

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


def safe_user(user: str) -> str:
    """A user name usable as one directory name; ValueError otherwise."""
    if (not isinstance(user, str) or not user or len(user) > 64 or user.startswith(".")
            or any(c in user for c in "/\\\x00")):
        raise ValueError(f"invalid user name {user!r}")
    return user


def safe_path(path: str) -> str:
    """A notebook path relative to a home, e.g. ``day1/intro.ipynb``; ValueError otherwise."""
    if not isinstance(path, str) or "\\" in path or "\x00" in path or len(path) > 1024:
        raise ValueError(f"invalid notebook path {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or not parts[-1].endswith(".ipynb"):
        raise ValueError(f"not a notebook path relative to a home: {path!r}")
    return path


def is_hidden(path: str) -> bool:
    """Hidden files and folders (and so .ipynb_checkpoints) are never rendered."""
    return any(p.startswith(".") for p in PurePosixPath(path).parts)


def atomic_write(target: Path, data: str | bytes, mtime_ns: int | None = None) -> None:
    """Write `target` so that readers see the old or the new content, never a mix."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        # No fsync: everything here is rebuilt by catch_up after a crash.
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _when(mtime_ns: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC"), moment.isoformat(timespec="seconds")


def _facts_line(facts: Mapping[str, Any]) -> str:
    if facts.get("problem"):
        return "could not be read"
    line = f"{facts.get('cells', 0)} cells · {facts.get('executed', 0)} executed"
    return line + (" · last executed cell raised an error" if facts.get("last_error") else "")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


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


class Renderer:
    """Renders views, summary fragments and summaries under `output_dir`.

    Rendering methods are meant for one thread (the render worker); `status`, `index` and
    `version` may be read from any thread.
    """

    def __init__(self, output_dir: str | Path, *, max_cells: int = 10, max_lines: int = 25,
                 view_link: Callable[[str, str], str | None] | None = None) -> None:
        if max_cells < 1 or max_lines < 1:
            raise ValueError("max_cells and max_lines must be at least 1")
        self.output_dir = Path(output_dir)
        self.max_cells, self.max_lines = max_cells, max_lines
        self.view_link = view_link
        self._pages = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES / "render"), autoescape=True,
            trim_blocks=True, lstrip_blocks=True)
        self._page_globals = {"csp": PAGE_CSP, "lab_css": lab_css()}
        self._lock = threading.RLock()
        self._parts: dict[str, dict[str, dict[str, Any]]] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._changed: dict[str, set[str]] = {}  # path -> users changed since its summary
        self._version = 0
        self._load_statuses()

    # -- where things are -------------------------------------------------------------
    def view_file(self, user: str, path: str) -> Path:
        return self.output_dir / "views" / safe_user(user) / f"{safe_path(path)}.html"

    def summary_file(self, path: str) -> Path:
        return self.output_dir / "summary" / f"{safe_path(path)}.html"

    def status_file(self, path: str) -> Path:
        return self.output_dir / "summary" / f"{safe_path(path)}.json"

    def _part_file(self, user: str, path: str) -> Path:
        return self.output_dir / "parts" / safe_path(path) / f"{safe_user(user)}.json"

    def view_mtime_ns(self, user: str, path: str) -> int | None:
        try:
            return self.view_file(user, path).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def part_mtime_ns(self, user: str, path: str) -> int | None:
        part = self._parts_of(path).get(user)
        return None if part is None else int(part["mtime_ns"])

    def parts(self) -> Iterator[tuple[str, str]]:
        """Every (user, path) with a summary fragment on disk."""
        root = self.output_dir / "parts"
        for file in sorted(root.rglob("*.json")) if root.is_dir() else []:
            if not file.name.startswith("."):
                yield file.stem, file.parent.relative_to(root).as_posix()

    # -- rendering ----------------------------------------------------------------------
    def render(self, user: str, path: str, content: bytes | str | Mapping[str, Any],
               mtime_ns: int) -> Facts:
        """Render one participant's notebook: the full view and their summary fragment."""
        safe_user(user)
        safe_path(path)
        try:
            nb = ipytail.load_notebook(content)
            facts = ipytail.facts(nb)
            full = self._cells(nb)
            short_nb = ipytail.tail(nb, self.max_cells, self.max_lines)
            short = self._cells(short_nb)
            hidden = len(nb.cells) - len(short_nb.cells)
        except NotebookError as e:
            return self.render_problem(user, path, str(e), mtime_ns)
        except Exception as e:  # nbconvert on a strange notebook: show it, keep going
            log.exception("rendering %s's %s failed", user, path)
            return self.render_problem(user, path, f"rendering failed ({type(e).__name__})",
                                       mtime_ns)
        self._write_view(user, path, self._part_html(full, 0, None), facts, mtime_ns)
        self._keep_part(user, path, self._part_html(short, hidden, None), facts, mtime_ns)
        return facts

    def render_problem(self, user: str, path: str, problem: str, mtime_ns: int) -> Facts:
        """The placeholder for a notebook that cannot be read or rendered."""
        facts = Facts(problem=problem)
        html = self._part_html("", 0, problem)
        self._write_view(user, path, html, facts, mtime_ns)
        self._keep_part(user, path, html, facts, mtime_ns)
        return facts

    def forget(self, user: str, path: str) -> None:
        """The notebook is gone: drop its view and its place in the summary."""
        with self._lock:
            self._parts_of(path).pop(user, None)
            self._changed.setdefault(path, set()).add(user)
        for file in (self.view_file(user, path), self._part_file(user, path)):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()

    def write_summary(self, path: str) -> int:
        """Assemble the summary page and status of `path` from the fragments; its version."""
        with self._lock:
            parts = dict(self._parts_of(path))
            before = self._statuses.get(path, {})
            version = int(before.get("version", 0)) + 1
            changed = self._changed.pop(path, set())
        participants, status_people = [], {}
        for user in sorted(parts):
            part = parts[user]
            saved, saved_iso = _when(int(part["mtime_ns"]))
            participants.append({
                "user": user, "facts": part["facts"], "facts_line": _facts_line(part["facts"]),
                "saved": saved, "saved_iso": saved_iso, "html": Markup(part["html"]),
                "link": self.view_link(user, path) if self.view_link else None})
            # The summary version in which this participant last changed: a page can
            # fetch just their fragment again.
            since = before.get("participants", {}).get(user, {}).get("version")
            status_people[user] = {**part["facts"], "mtime": int(part["mtime_ns"]) / 1e9,
                                   "saved": saved_iso, "version": (
                                       version if user in changed or since is None else since)}
        html = self._pages.get_template("summary.html.j2").render(
            **self._page_globals, path=path, version=version, participants=participants,
            max_cells=self.max_cells, max_lines=self.max_lines)
        atomic_write(self.summary_file(path), html)
        status = {"path": path, "version": version, "rendered": time.time(),
                  "participants": status_people}
        atomic_write(self.status_file(path), json.dumps(status, indent=1))
        with self._lock:
            self._statuses[path] = status
            self._version += 1
            index = {"version": self._version, "notebooks": dict(sorted(self._statuses.items()))}
        atomic_write(self.output_dir / "index.json", json.dumps(index, indent=1))
        return version

    # -- reading (any thread) ---------------------------------------------------------
    @property
    def version(self) -> int:
        """Grows by one with every summary written; kept across restarts in index.json."""
        with self._lock:
            return self._version

    def status(self, path: str) -> dict[str, Any] | None:
        """The status of one notebook name (as in summary/<path>.json), or None."""
        with self._lock:
            status = self._statuses.get(safe_path(path))
            return json.loads(json.dumps(status)) if status else None

    def fragment(self, path: str, user: str) -> str | None:
        """One participant's sanitized summary cells (no page, no styles), or None."""
        with self._lock:
            part = self._parts_of(safe_path(path)).get(safe_user(user))
            return None if part is None else str(part["html"])

    def index(self) -> dict[str, Any]:
        """{"version": n, "notebooks": {path: status}} for the index page."""
        with self._lock:
            return json.loads(json.dumps(
                {"version": self._version, "notebooks": dict(sorted(self._statuses.items()))}))

    # -- internals ----------------------------------------------------------------------
    def _cells(self, nb: nbformat.NotebookNode) -> str:
        if not nb.cells:
            return ""
        with _EXPORTER_LOCK:  # the exporter and its filters are not thread-safe
            html, _ = exporter().from_notebook_node(nb)
        return html

    def _part_html(self, cells_html: str, hidden: int, problem: str | None) -> str:
        return self._pages.get_template("part.html.j2").render(
            cells_html=Markup(cells_html), hidden=hidden, problem=problem)

    def _write_view(self, user: str, path: str, body: str, facts: Facts,
                    mtime_ns: int) -> None:
        saved, saved_iso = _when(mtime_ns)
        html = self._pages.get_template("view.html.j2").render(
            **self._page_globals, user=user, path=path, body=Markup(body),
            facts_line=_facts_line(facts.as_dict()), saved=saved, saved_iso=saved_iso)
        atomic_write(self.view_file(user, path), html, mtime_ns=mtime_ns)

    def _keep_part(self, user: str, path: str, html: str, facts: Facts,
                   mtime_ns: int) -> None:
        part = {"user": user, "path": path, "mtime_ns": mtime_ns, "facts": facts.as_dict(),
                "html": html}
        atomic_write(self._part_file(user, path), json.dumps(part), mtime_ns=mtime_ns)
        with self._lock:
            self._parts_of(path)[user] = part
            self._changed.setdefault(path, set()).add(user)

    def _parts_of(self, path: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            if path not in self._parts:
                loaded: dict[str, dict[str, Any]] = {}
                folder = self.output_dir / "parts" / safe_path(path)
                for file in folder.glob("*.json") if folder.is_dir() else []:
                    part = _read_json(file)
                    if not file.name.startswith(".") and isinstance(part, dict) and {
                            "mtime_ns", "facts", "html"} <= part.keys():
                        loaded[file.stem] = part
                self._parts[path] = loaded
            return self._parts[path]

    def _load_statuses(self) -> None:
        index = _read_json(self.output_dir / "index.json")
        if isinstance(index, dict) and isinstance(index.get("version"), int):
            self._version = index["version"]
        root = self.output_dir / "summary"
        for file in root.rglob("*.ipynb.json") if root.is_dir() else []:
            status = _read_json(file)
            if isinstance(status, dict) and isinstance(status.get("path"), str):
                self._statuses[status["path"]] = status
        for leftover in self.output_dir.rglob(".*.tmp") if self.output_dir.is_dir() else []:
            with contextlib.suppress(OSError):
                leftover.unlink()  # from a process that died mid-write

