"""What an instructor can do from the dashboard: restart or start a participant's server,
hand out new material into every home, upload material. Every action is recorded.

Starting and stopping goes through the hub's REST API with the dashboard's token (its
role covers only the `participants` group). Hand-outs write into homes through
workshop.materials: never overwriting a participant's file, running as that participant.

An action on many participants reports per participant and never stops at the first
failure: whatever goes wrong for one of them (a plain file where a materials folder
belongs, a name the system refuses) is that participant's line in the report, the others
get their files, and the action is recorded either way. The participants are the ones in
force (the last good list while users.txt is held back, workshop.rosterguard).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request

from workshop.accounts import ensure_system_user
from workshop.materials import Ledger, hand_out, material_files, material_path
from workshop.roster import Roster, RosterFile
from workshop.rosterguard import GuardedRoster
from workshop.syncstatus import last_good_path, status_path

from .actionlog import ActionLog
from .auth import AuthGate
from .pages import page_headers, valid_user
from .servers import ServerError, Servers

MAX_UPLOAD = 100 * 1024 * 1024  # datasets are welcome; the events API keeps its small cap
MAX_LISTED_ACTIONS = 500

log = logging.getLogger(__name__)


def blueprint(gate: AuthGate, servers: Servers, actions_log: ActionLog, users: RosterFile, *,
              materials: Path, ledger: Ledger, home_root: Path) -> Blueprint:
    bp = Blueprint("actions", __name__)
    guarded = GuardedRoster(users, last_good_path(status_path()))

    def in_force() -> Roster:
        verdict = guarded.current()
        if verdict.roster is None:
            abort(503, verdict.held or "users.txt cannot be read")
        return verdict.roster

    def participant(user: str) -> str:
        user = valid_user(user)
        if user not in in_force().participants:
            abort(404, f"{user} is not a participant in users.txt")
        return user

    def server_action(action: str, user: str) -> tuple[Response, int]:
        who = gate.api_instructor()
        gate.check_csrf()
        user = participant(user)
        try:
            if action == "restart":
                detail: dict[str, Any] = {"seconds": round(servers.restart(user), 1)}
            else:
                servers.start(user)
                detail = {}
            outcome, status = "ok", 200
        except Exception as e:  # ServerError, the hub unreachable, ...: said, and recorded
            if not isinstance(e, ServerError):
                log.exception("%s of %s failed", action, user)
            outcome, status, detail = "failed", 502, {"error": str(e) or type(e).__name__}
        entry = actions_log.record(who["name"], action, user, outcome, detail)
        return jsonify(entry), status

    def hand_out_to(name: str) -> dict[str, Any]:
        """One participant's hand-out report; a failure of any kind is theirs alone."""
        try:
            account = ensure_system_user(name, home_root)
            return hand_out(account, materials, ledger).as_dict()
        except Exception as e:
            if not isinstance(e, OSError | ValueError | RuntimeError):
                log.exception("hand-out to %s failed", name)
            return {"user": name, "error": str(e) or type(e).__name__}

    @bp.post("/actions/restart/<user>")
    def restart(user: str):
        return server_action("restart", user)

    @bp.post("/actions/start/<user>")
    def start(user: str):
        return server_action("start", user)

    def handout_page(**context: Any) -> Response:
        who = gate.page_instructor()
        if isinstance(who, Response):
            return who
        html = render_template("pages/handout.html", instructor=who, csrf=gate.csrf_token(),
                               files=sorted(material_files(materials)),
                               actions=actions_log.recent(20), **context)
        return page_headers(Response(html, mimetype="text/html"))

    @bp.get("/handout")
    def handout_form():
        return handout_page()

    @bp.post("/actions/handout")
    def handout():
        wants_json = request.accept_mimetypes.best == "application/json"
        who = gate.api_instructor() if wants_json else gate.page_instructor()
        if isinstance(who, Response):
            return who
        gate.check_csrf()
        reports = [hand_out_to(name) for name in sorted(in_force().participants)]
        delivered = sum(len(r.get("copied", [])) + len(r.get("renamed", {})) for r in reports)
        # Who did not get everything, and why: whole participants, or single files.
        failed = {r["user"]: r["error"] if "error" in r else r["failed"]
                  for r in reports if r.get("error") or r.get("failed")}
        outcome = "ok" if not failed else "failed" if len(failed) == len(reports) \
            else "partly failed"
        actions_log.record(who["name"], "handout", "all participants", outcome,
                           {"participants": len(reports), "files_delivered": delivered,
                            "failed": failed})
        if wants_json:
            return jsonify(reports=reports, outcome=outcome)
        return handout_page(reports=reports, outcome=outcome)

    @bp.post("/materials")
    def upload():
        request.max_content_length = MAX_UPLOAD
        who = gate.page_instructor()
        if isinstance(who, Response):
            return who
        gate.check_csrf()
        folder = request.form.get("folder", "").strip().strip("/")
        saved = []
        for upload in request.files.getlist("files"):
            name = os.path.basename(upload.filename or "")
            if not name or name.startswith("."):
                continue
            try:
                rel = material_path(f"{folder}/{name}" if folder else name)
            except ValueError as e:
                return handout_page(error=str(e)), 400
            target = materials / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload.")
            with os.fdopen(fd, "wb") as f:
                upload.save(f)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            saved.append(rel)
        if not saved:
            return handout_page(error="no file chosen"), 400
        actions_log.record(who["name"], "upload", ", ".join(saved), "ok", {"files": saved})
        return handout_page(uploaded=saved)

    @bp.get("/api/actions")
    def recent():
        gate.api_instructor()
        limit = request.args.get("limit", "50")
        if not re.fullmatch(r"[0-9]{1,6}", limit) or not 1 <= int(limit) <= MAX_LISTED_ACTIONS:
            abort(400, f"limit must be a whole number from 1 to {MAX_LISTED_ACTIONS}")
        return jsonify(actions_log.recent(int(limit)))

    return bp
