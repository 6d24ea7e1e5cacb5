"""Participants' rendered notebooks on disk: views, summary fragments, summaries, index.

Output layout below `output_dir` (everything here can be rebuilt from the homes)::

    views/<user>/<key>.html      one participant's notebook, a full page
    parts/<key>/<user>.json      cache of their summary fragment and facts
    summary/<key>.html           the summary ("ipytail") of one notebook name, everyone
    summary/<key>.json           its status: path, version, each participant's facts (and
                                 the version in which they last changed)
    index.json                   {"version": n}, n grows with every summary written
    layout                       this layout's number: files of another are cleared at start

`<key>` is a hash of the notebook's path (`path_key`), never the path itself: participants
name folders freely (``day2.ipynb/alice.json/x.ipynb``), and no path of theirs may turn
another output file into a folder. User names are checked (`safe_user`: one folder name,
no leading dot, so never a temporary file's name); nothing else below the output dir comes
from a participant. Pages find files through `view_file`, `summary_file`, `status_file`.

Every file is written to a temporary file in its own directory and moved into place with
`os.replace`, so a reader sees the old file or the new one, never half of one. A view's
mtime is its notebook's, so a view older than its notebook is stale (worker.catch_up).

A summary (a column of the board) exists only while someone has that notebook: when the
last participant's fragment is gone, `write_summary` removes it. Writing a summary costs
that notebook's participants, not the number of notebooks: the index keeps only the
global version on disk.

The HTML itself comes from convert.py, normally in a render process (renderpool.py);
`render` runs it in this process (tests, tools). Participants' notebooks are untrusted: see
sanitize.py for how they are kept from running anything in the instructor's browser.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .convert import TEMPLATES, Converted, convert, exporter, lab_css
from .ipytail import Facts
from .limits import Limits
from .paths import is_hidden, safe_path, safe_user
from .sanitize import PAGE_CSP, SERVE_HEADERS

__all__ = ["PAGE_CSP", "SERVE_HEADERS", "Renderer", "atomic_write", "exporter", "is_hidden",
           "lab_css", "path_key", "safe_path", "safe_user"]

log = logging.getLogger("dashboard.render")

LAYOUT = "2"  # 1: files named after participants' paths (could collide)
KEY_CHARS = 32  # hex digits of SHA-256: 128 bits, no collision anyone can find
_OUTPUT_FOLDERS = ("views", "parts", "summary")


def path_key(path: str) -> str:
    """The file name stem of everything rendered for a notebook path."""
    return hashlib.sha256(safe_path(path).encode("utf-8")).hexdigest()[:KEY_CHARS]


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
        return "could not be shown"
    line = f"{facts.get('cells', 0)} cells · {facts.get('executed', 0)} executed"
    return line + (" · last executed cell raised an error" if facts.get("last_error") else "")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class Renderer:
    """Writes views, summary fragments and summaries under `output_dir`.

    `store`, `render`, `render_problem` and `forget` may run in several threads at once for
    different (user, path) pairs (the worker never gives one pair to two threads);
    summaries are written one at a time. `status`, `index`, `fragment` and `version` may
    be read from any thread.
    """

    def __init__(self, output_dir: str | Path, *, max_cells: int = 10, max_lines: int = 25,
                 view_link: Callable[[str, str], str | None] | None = None,
                 limits: Limits | None = None) -> None:
        if max_cells < 1 or max_lines < 1:
            raise ValueError("max_cells and max_lines must be at least 1")
        self.output_dir = Path(output_dir)
        self.max_cells, self.max_lines = max_cells, max_lines
        self.limits = limits or Limits()
        self.view_link = view_link
        self._pages = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES / "render"), autoescape=True,
            trim_blocks=True, lstrip_blocks=True)
        self._page_globals = {"csp": PAGE_CSP, "lab_css": lab_css()}
        self._lock = threading.RLock()
        self._summary_lock = threading.Lock()  # summaries one at a time: versions in order
        self._parts: dict[str, dict[str, dict[str, Any]]] = {}  # path -> user -> part
        self._statuses: dict[str, dict[str, Any]] = {}
        self._changed: dict[str, set[str]] = {}  # path -> users changed since its summary
        self._version = 0
        self._load()

    @property
    def convert_options(self) -> dict[str, Any]:
        """What `convert` needs besides the notebook, as JSON (for a render process)."""
        return {"max_cells": self.max_cells, "max_lines": self.max_lines,
                "limits": self.limits.as_dict()}

    # -- where things are -------------------------------------------------------------
    def view_file(self, user: str, path: str) -> Path:
        return self.output_dir / "views" / safe_user(user) / f"{path_key(path)}.html"

    def summary_file(self, path: str) -> Path:
        return self.output_dir / "summary" / f"{path_key(path)}.html"

    def status_file(self, path: str) -> Path:
        return self.output_dir / "summary" / f"{path_key(path)}.json"

    def _part_file(self, user: str, path: str) -> Path:
        return self.output_dir / "parts" / path_key(path) / f"{safe_user(user)}.json"

    def view_mtime_ns(self, user: str, path: str) -> int | None:
        try:
            return self.view_file(user, path).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def part_mtime_ns(self, user: str, path: str) -> int | None:
        with self._lock:
            part = self._parts.get(safe_path(path), {}).get(safe_user(user))
        return None if part is None else int(part["mtime_ns"])

    def parts(self) -> Iterator[tuple[str, str]]:
        """Every (user, path) with a summary fragment."""
        with self._lock:
            pairs = sorted((user, path) for path, users in self._parts.items() for user in users)
        yield from pairs

    def paths(self) -> list[str]:
        """Every notebook path with a summary (a column of the board)."""
        with self._lock:
            return sorted(self._statuses)

    def stale_summaries(self) -> list[str]:
        """Notebook paths whose summary does not show their fragments as they are: a
        summary follows its views by the worker's `summary_lag`, and a dashboard killed
        in between leaves it showing the save before (with nothing left to re-render)."""
        with self._lock:
            return sorted(path for path, parts in self._parts.items() if {
                user: int(part["mtime_ns"]) / 1e9 for user, part in parts.items()} != {
                user: facts.get("mtime") for user, facts in
                self._statuses.get(path, {}).get("participants", {}).items()})

    # -- rendering ----------------------------------------------------------------------
    def render(self, user: str, path: str, content: bytes | str | Mapping[str, Any],
               mtime_ns: int) -> Facts:
        """Render one participant's notebook in this process and `store` it."""
        safe_user(user)
        safe_path(path)
        converted = convert(content, max_cells=self.max_cells, max_lines=self.max_lines,
                            limits=self.limits)
        return self.store(user, path, converted, mtime_ns)

    def store(self, user: str, path: str, converted: Converted, mtime_ns: int) -> Facts:
        """Write what a render produced: the full view and the summary fragment."""
        if converted.problem:
            return self.render_problem(user, path, converted.problem, mtime_ns)
        facts = converted.facts
        self._write_view(user, path, self._part_html(converted.view_html, 0, None), facts,
                         mtime_ns)
        part = self._part_html(converted.part_html, converted.hidden, converted.part_problem)
        self._keep_part(user, path, part, facts, mtime_ns)
        return facts

    def render_problem(self, user: str, path: str, problem: str, mtime_ns: int) -> Facts:
        """The placeholder for a notebook that cannot be read or shown."""
        facts = Facts(problem=problem)
        html = self._part_html("", 0, problem)
        self._write_view(user, path, html, facts, mtime_ns)
        self._keep_part(user, path, html, facts, mtime_ns)
        return facts

    def forget(self, user: str, path: str) -> bool:
        """The notebook is gone: drop its view and its place in the summary. False if
        nothing was there (then the summary need not change)."""
        with self._lock:
            users = self._parts.get(path, {})
            known = users.pop(user, None) is not None
            if not users:
                self._parts.pop(path, None)
            if known:
                self._changed.setdefault(path, set()).add(user)
        for file in (self.view_file(user, path), self._part_file(user, path)):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        return known

    def write_summary(self, path: str) -> int:
        """Assemble the summary page and status of `path` from the fragments; its version.
        With no fragment left the summary is removed (its column goes): 0."""
        with self._summary_lock:
            with self._lock:
                parts = dict(self._parts.get(safe_path(path), {}))
                before = self._statuses.get(path, {})
                version = int(before.get("version", 0)) + 1
                changed = self._changed.pop(path, set())
            if not parts:
                return self._remove_summary(path)
            participants, people = [], {}
            for user in sorted(parts):
                part = parts[user]
                saved, saved_iso = _when(int(part["mtime_ns"]))
                participants.append({
                    "user": user, "facts": part["facts"],
                    "facts_line": _facts_line(part["facts"]), "saved": saved,
                    "saved_iso": saved_iso, "html": Markup(part["html"]),
                    "link": self.view_link(user, path) if self.view_link else None})
                # The summary version in which this participant last changed: a page can
                # fetch just their fragment again.
                since = before.get("participants", {}).get(user, {}).get("version")
                people[user] = {**part["facts"], "mtime": int(part["mtime_ns"]) / 1e9,
                                "saved": saved_iso, "version": (
                                    version if user in changed or since is None else since)}
            html = self._pages.get_template("summary.html.j2").render(
                **self._page_globals, path=path, version=version, participants=participants,
                max_cells=self.max_cells, max_lines=self.max_lines)
            atomic_write(self.summary_file(path), html)
            status = {"path": path, "version": version, "rendered": time.time(),
                      "participants": people}
            atomic_write(self.status_file(path), json.dumps(status, indent=1))
            with self._lock:
                self._statuses[path] = status
            self._bump()
            return version

    # -- reading (any thread) ---------------------------------------------------------
    @property
    def version(self) -> int:
        """Grows by one with every summary written or removed; kept in index.json."""
        with self._lock:
            return self._version

    def status(self, path: str) -> dict[str, Any] | None:
        """The status of one notebook name (as in its summary's .json), or None."""
        with self._lock:
            status = self._statuses.get(safe_path(path))
            return json.loads(json.dumps(status)) if status else None

    def fragment(self, path: str, user: str) -> str | None:
        """One participant's sanitized summary cells (no page, no styles), or None."""
        with self._lock:
            part = self._parts.get(safe_path(path), {}).get(safe_user(user))
            return None if part is None else str(part["html"])

    def index(self) -> dict[str, Any]:
        """{"version": n, "notebooks": {path: status}} for the index page."""
        with self._lock:
            return json.loads(json.dumps(
                {"version": self._version, "notebooks": dict(sorted(self._statuses.items()))}))

    # -- internals ----------------------------------------------------------------------
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
            self._parts.setdefault(path, {})[user] = part
            self._changed.setdefault(path, set()).add(user)

    def _remove_summary(self, path: str) -> int:
        for file in (self.summary_file(path), self.status_file(path)):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        with self._lock:
            had = self._statuses.pop(path, None) is not None
        if had:
            self._bump()
        return 0

    def _bump(self) -> None:
        with self._lock:
            self._version += 1
            version = self._version
        atomic_write(self.output_dir / "index.json", json.dumps({"version": version}))

    def _load(self) -> None:
        """What an earlier run left: the version, statuses and fragments (checked: a file
        that is not where its content says it belongs is ignored)."""
        index = _read_json(self.output_dir / "index.json")
        if isinstance(index, dict) and isinstance(index.get("version"), int):
            self._version = index["version"]
        layout = self.output_dir / "layout"
        if not layout.exists() or layout.read_text().strip() != LAYOUT:
            for folder in _OUTPUT_FOLDERS:  # an older layout: catch_up renders it anew
                shutil.rmtree(self.output_dir / folder, ignore_errors=True)
            atomic_write(layout, LAYOUT + "\n")
        for file in sorted((self.output_dir / "summary").glob("*.json")):
            status = _read_json(file)
            if _belongs(status, file.stem, None):
                self._statuses[status["path"]] = status
        for file in sorted((self.output_dir / "parts").glob("*/*.json")):
            part = _read_json(file)
            if (_belongs(part, file.parent.name, file.stem)
                    and {"mtime_ns", "facts", "html"} <= part.keys()):
                self._parts.setdefault(part["path"], {})[part["user"]] = part
        for leftover in self.output_dir.rglob(".*.tmp") if self.output_dir.is_dir() else []:
            with contextlib.suppress(OSError):
                leftover.unlink()  # from a process that died mid-write


def _belongs(data: Any, key: str, user: str | None) -> bool:
    """`data` (a status or a part) names the path hashed to `key` (and `user`)."""
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        return False
    try:
        if path_key(data["path"]) != key:
            return False
    except ValueError:
        return False
    return user is None or data.get("user") == user
