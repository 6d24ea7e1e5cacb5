"""The instructor's pages and the JSON they poll for live updates.

Pages are the dashboard's own HTML (scripts only from static files, `INLINE_PAGE_CSP`);
participants' content inside them is the renderer's sanitized fragments. Full views are
the renderer's files, served with `SERVE_HEADERS` (sandboxed, no script at all) into an
iframe. Every route here is for instructors only.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    render_template,
    request,
    send_file,
)

from workshop.roster import RosterFile
from workshop.rosterguard import GuardedRoster
from workshop.syncstatus import last_good_path, status_path

from .actionlog import ActionLog
from .auth import AuthGate
from .render import Renderer, lab_css, safe_path, safe_user
from .sanitize import INLINE_PAGE_CSP, SERVE_HEADERS
from .servers import Servers
from .sources import NotebookSource, SourceError


def page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = INLINE_PAGE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def participants(users: GuardedRoster, renderer: Renderer) -> list[str]:
    """Everyone in force who is not an instructor, plus anyone who saved something.

    In force: users.txt, or the last good list while users.txt is held back (an editor
    that truncated it while saving must not empty the board)."""
    names: set[str] = set()
    roster = users.current().roster
    if roster is not None:  # else the index still lists who saved
        names |= roster.participants
    for status in renderer.index()["notebooks"].values():
        names |= set(status.get("participants", {}))
    return sorted(names)


def summary_update(renderer: Renderer, path: str, since: int) -> dict[str, Any]:
    """The summary of `path`: everyone's facts, and fragments of those changed after `since`."""
    status = renderer.status(path) or {"version": 0, "participants": {}}
    people = {}
    for user, facts in status["participants"].items():
        entry = dict(facts)
        if facts.get("version", 0) > since:
            entry["html"] = renderer.fragment(path, user) or ""
        people[user] = entry
    return {"path": path, "version": status["version"], "participants": people}


def blueprint(gate: AuthGate, renderer: Renderer, source: NotebookSource,
              users: RosterFile, stats: Callable[[], dict[str, Any]], servers: Servers,
              actions: ActionLog, lab_url: Callable[[str], str] | None = None) -> Blueprint:
    """`lab_url(user)`: where an instructor steps into a participant's JupyterLab, or None
    when that is not allowed (participants' servers on the hub's origin)."""
    bp = Blueprint("pages", __name__)
    guarded = GuardedRoster(users, last_good_path(status_path()))

    def board() -> dict[str, Any]:
        """Everything the index shows; `version` changes whenever any of it does."""
        data = renderer.index()
        states = servers.states()
        recent = actions.recent(15)
        data["participants"] = participants(guarded, renderer)
        # Each participant's server has an origin of its own: the board links there.
        data["lab"] = ({u: lab_url(u) for u in data["participants"]} if lab_url else None)
        data["servers"] = states  # None: the hub could not be asked
        data["actions"] = recent
        data["now"] = datetime.now(UTC).isoformat()
        data["version"] = "{}-{}-{}".format(
            data["version"], recent[0]["id"] if recent else 0,
            hash(tuple(sorted((states or {}).items()))) & 0xFFFFFF)
        return data

    def instructor_only(view: Callable[..., Any]) -> Callable[..., Any]:
        """Anonymous: off to the hub's login. Not an instructor: 403. Checked first."""
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            who = gate.page_instructor()
            if isinstance(who, Response):
                return who
            g.instructor = who
            return view(*args, **kwargs)
        return wrapped

    def page(template: str, **context: Any) -> Response:
        html = render_template(template, instructor=g.instructor, **context)
        return page_headers(Response(html, mimetype="text/html"))

    @bp.get("/")
    @instructor_only
    def index():
        return page("pages/index.html", board=board(), stats=stats(), csrf=gate.csrf_token())

    @bp.get("/summary/<path:path>")
    @instructor_only
    def summary(path: str):
        update = summary_update(renderer, valid_path(path), since=-1)
        fragments = {u: p.pop("html") for u, p in update["participants"].items()}
        return page("pages/summary.html", path=update["path"], update=update,
                    fragments=fragments, lab_css=lab_css(), max_cells=renderer.max_cells,
                    max_lines=renderer.max_lines)

    @bp.get("/view/<user>/<path:path>")
    @instructor_only
    def view(user: str, path: str):
        path, user = valid_path(path), valid_user(user)
        status = (renderer.status(path) or {}).get("participants", {}).get(user)
        if status is None:
            abort(404, f"{user} has not saved {path}")
        return page("pages/view.html", who=user, path=path, status=status)

    @bp.get("/rendered/<user>/<path:path>")
    @instructor_only
    def rendered(user: str, path: str):
        """The renderer's file itself: sandboxed, no script, meant for the view's iframe."""
        file = renderer.view_file(valid_user(user), valid_path(path))
        if not file.is_file():
            abort(404, f"no rendered view of {user}'s {path} (yet)")
        response = send_file(file, mimetype="text/html", max_age=0)
        response.headers.update(SERVE_HEADERS)
        return response

    @bp.get("/download/<path:path>")
    @instructor_only
    def download(path: str):
        """Everyone's copy of one notebook, as a zip (end of the workshop)."""
        path = valid_path(path)
        buffer = io.BytesIO()
        added = 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in participants(guarded, renderer):
                try:
                    notebook = source.read(name, path)
                except SourceError:
                    continue  # never saved it, or unreadable: nothing to hand over
                content = notebook.content
                data = content if isinstance(content, bytes) else str(content).encode()
                stamp = time.localtime(notebook.mtime_ns / 1e9)[:6]
                archive.writestr(zipfile.ZipInfo(f"{name}/{path}", date_time=stamp), data)
                added += 1
        if not added:
            abort(404, f"nobody has a notebook {path}")
        buffer.seek(0)
        stem = path.replace("/", "_").removesuffix(".ipynb")
        return send_file(buffer, mimetype="application/zip", as_attachment=True,
                         download_name=f"{stem}-all-participants.zip")

    # -- what the pages poll (static/poll.js) ------------------------------------------
    @bp.get("/api/index")
    def api_index():
        gate.api_instructor()
        return jsonify(board())

    @bp.get("/api/summary/<path:path>")
    def api_summary(path: str):
        gate.api_instructor()
        since = request.args.get("since", "-1")
        # Plain ASCII digits of a sane length: int() also takes '²' or 5000 digits.
        if not re.fullmatch(r"-?[0-9]{1,18}", since):
            abort(400, "since must be a version number")
        return jsonify(summary_update(renderer, valid_path(path), int(since)))

    return bp


def valid_path(path: str) -> str:
    try:
        path = safe_path(path)
    except ValueError as e:
        abort(400, str(e))
    if not path.endswith(".ipynb"):
        abort(404, "only notebooks are shown here")
    return path


def valid_user(user: str) -> str:
    try:
        return safe_user(user)
    except ValueError as e:
        abort(400, str(e))
