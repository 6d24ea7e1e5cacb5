"""Adding participants from the dashboard, and users.txt's state as the hub sees it.

`POST /users` appends to users.txt (atomically, bcrypt-hashed, through the one roster
module); the users-sync service and the authenticator pick the change up within seconds.
The form and the JSON API are the same route; both are for instructors only.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request

from workshop.roster import Roster, RosterFile, RosterUnavailable, append_account

from .auth import AuthGate
from .pages import page_headers


def generated_password() -> str:
    # Easy to read out loud and type: no look-alike characters.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def blueprint(gate: AuthGate, users: RosterFile) -> Blueprint:
    bp = Blueprint("people", __name__)

    def roster() -> tuple[Roster | None, str | None]:
        try:
            return users.load(), None
        except RosterUnavailable as e:
            return None, str(e)

    def users_page(**context: Any) -> Response:
        who = gate.page_instructor()
        if isinstance(who, Response):
            return who
        current, error = roster()
        html = render_template("pages/users.html", instructor=who, roster=current,
                               roster_error=error, csrf=gate.csrf_token(), **context)
        return page_headers(Response(html, mimetype="text/html"))

    @bp.get("/users")
    def list_users():
        if request.accept_mimetypes.best == "application/json":
            gate.api_instructor()
            current, error = roster()
            if current is None:
                abort(503, error)
            return jsonify(instructors=sorted(current.instructors),
                           participants=sorted(current.participants),
                           problems=[{"line": p.line, "message": p.message}
                                     for p in current.problems])
        return users_page()

    @bp.post("/users")
    def add_user():
        as_json = request.is_json
        if as_json:
            gate.api_instructor()
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                abort(400, "expected a JSON object with name (and password, instructor)")
        else:
            who = gate.page_instructor()
            if isinstance(who, Response):
                return who
            gate.check_csrf()
            body = request.form
        name = str(body.get("name", "")).strip().lower()
        password = str(body.get("password") or "").strip() or generated_password()
        instructor = body.get("instructor") in (True, "on", "true", "1")
        try:
            append_account(users.path, name, password, instructor=instructor)
        except (ValueError, OSError) as e:
            # ValueError: a bad or taken name. OSError: users.txt cannot be written here
            # (read-only mount, e.g. a Kubernetes Secret): say so instead of failing.
            status = 400 if isinstance(e, ValueError) else 503
            message = str(e) if status == 400 else f"cannot write {users.path}: {e.strerror}"
            if as_json:
                abort(status, message)
            return users_page(error=message, form={"name": name}), status
        if as_json:
            return jsonify(name=name, password=password, instructor=instructor), 201
        # The password is shown once, to the instructor who asked for it; never logged.
        return users_page(added={"name": name, "password": password,
                                 "instructor": instructor}), 201

    return bp
