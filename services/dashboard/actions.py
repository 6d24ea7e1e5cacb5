"""What an instructor can do from the dashboard: restart or start a participant's server,
hand out new material into every home, upload material. Every action is recorded.

Starting and stopping goes through the hub's REST API with the dashboard's token (its
role covers only the `participants` group). Hand-outs write into homes through
workshop.materials: never overwriting a participant's file, running as that participant.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request

from workshop.accounts import ensure_system_user
from workshop.materials import Ledger, hand_out, material_files, material_path
from workshop.roster import RosterFile, RosterUnavailable

from .actionlog import ActionLog
from .auth import AuthGate
from .pages import page_headers, valid_user
from .servers import ServerError, Servers

MAX_UPLOAD = 100 * 1024 * 1024  # datasets are welcome; the events API keeps its small cap


def blueprint(gate: AuthGate, servers: Servers, log: ActionLog, users: RosterFile, *,
              materials: Path, ledger: Ledger, home_root: Path) -> Blueprint:
    bp = Blueprint("actions", __name__)

    def participant(user: str) -> str:
        user = valid_user(user)
        try:
            if user not in users.load().participants:
                abort(404, f"{user} is not a participant in users.txt")
        except RosterUnavailable as e:
            abort(503, str(e))
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
        except ServerError as e:
            outcome, status, detail = "failed", 502, {"error": str(e)}
        entry = log.record(who["name"], action, user, outcome, detail)
        return jsonify(entry), status

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
                               actions=log.recent(20), **context)
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
        try:
            names = sorted(users.load().participants)
        except RosterUnavailable as e:
            abort(503, str(e))
        reports = []
        for name in names:
            try:
                account = ensure_system_user(name, home_root)
                reports.append(hand_out(account, materials, ledger).as_dict())
            except (OSError, RuntimeError, ValueError) as e:
                reports.append({"user": name, "error": str(e)})
        copied = sum(len(r.get("copied", [])) + len(r.get("renamed", {})) for r in reports)
        failed = [r["user"] for r in reports if "error" in r]
        log.record(who["name"], "handout", "all participants", "failed" if failed else "ok",
                   {"participants": len(reports), "files_delivered": copied,
                    "failed": failed})
        if wants_json:
            return jsonify(reports=reports)
        return handout_page(reports=reports)

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
        log.record(who["name"], "upload", ", ".join(saved), "ok", {"files": saved})
        return handout_page(uploaded=saved)

    @bp.get("/api/actions")
    def recent():
        gate.api_instructor()
        return jsonify(log.recent(int(request.args.get("limit", "50"))))

    return bp
