"""Adding participants from the dashboard, and users.txt's state as the hub sees it.

`POST /users` appends to users.txt (under the file's edit lock, bcrypt-hashed, through the
one roster module); the users-sync service and the authenticator pick the change up within
seconds. The form and the JSON API are the same route; both are for instructors only.

The page also shows what users-sync reported (its status file, syncstatus): a users.txt
held back by the mass-removal guard, accounts it could not create, its last error. While
the file is held back, adding someone is refused: the addition would be written into a
file that is not in force, and the instructor should see why first.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request

from workshop.roster import Roster, RosterFile, append_account
from workshop.rosterguard import GuardedRoster
from workshop.syncstatus import last_good_path, read_status, status_path

from .auth import AuthGate
from .pages import page_headers

# What a JSON addition may say, and of which type. Anything else is refused, not guessed:
# `"instructor": "yes"` added a participant, not an instructor; a misspelt field was dropped.
JSON_FIELDS: dict[str, tuple[type, ...]] = {"name": (str,), "password": (str, type(None)),
                                            "instructor": (bool,)}
_TYPE_NAMES = {str: "a string", type(None): "null", bool: "true or false"}


def json_addition(body: Any) -> dict[str, Any]:
    """The JSON body of `POST /users`, checked: known fields only, each of its type;
    abort(400) saying what is wrong otherwise."""
    if not isinstance(body, dict):
        abort(400, "expected a JSON object with name (and password, instructor)")
    unknown = sorted(set(body) - JSON_FIELDS.keys())
    if unknown:
        listed = ", ".join(repr(name)[:40] for name in unknown[:5])
        abort(400, f"unknown field(s) {listed}; known are: {', '.join(JSON_FIELDS)}")
    for name, types in JSON_FIELDS.items():
        if name in body and not isinstance(body[name], types):
            abort(400, f"{name} must be " + " or ".join(_TYPE_NAMES[t] for t in types))
    return body


class HeldBack(ValueError):
    """users.txt is held back by the guard: no additions until it is fixed."""


def generated_password() -> str:
    # Easy to read out loud and type: no look-alike characters.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def blueprint(gate: AuthGate, users: RosterFile, *,
              status_file: str | os.PathLike[str] | None = None) -> Blueprint:
    bp = Blueprint("people", __name__)
    status_file = Path(status_file) if status_file is not None else status_path()
    guarded = GuardedRoster(users, last_good_path(status_file))

    def state() -> dict[str, Any]:
        """users.txt as read, what is in force, and what users-sync last said."""
        verdict = guarded.current()
        return {"roster": verdict.file, "in_force": verdict.roster, "held": verdict.held,
                "sync": read_status(status_file) or {}}

    def refuse_while_held(current: Roster) -> None:
        held = guarded.judge(current).held
        if held:
            raise HeldBack(f"{held} Nobody is added until then.")

    def users_page(**context: Any) -> Response:
        who = gate.page_instructor()
        if isinstance(who, Response):
            return who
        html = render_template("pages/users.html", instructor=who, csrf=gate.csrf_token(),
                               **state(), **context)
        return page_headers(Response(html, mimetype="text/html"))

    @bp.get("/users")
    def list_users():
        if request.accept_mimetypes.best == "application/json":
            gate.api_instructor()
            now = state()
            current: Roster | None = now["in_force"]
            if current is None:
                abort(503, now["held"] or "users.txt cannot be read")
            file: Roster | None = now["roster"]
            return jsonify(instructors=sorted(current.instructors),
                           participants=sorted(current.participants),
                           problems=[{"line": p.line, "message": p.message}
                                     for p in (file.problems if file else ())],
                           held=now["held"], failed=now["sync"].get("failed", []),
                           sync_error=now["sync"].get("error"))
        return users_page()

    @bp.post("/users")
    def add_user():
        as_json = request.is_json
        if as_json:
            gate.api_instructor()
            body = json_addition(request.get_json(silent=True))
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
            append_account(users.path, name, password, instructor=instructor,
                           check=refuse_while_held)
        except (ValueError, OSError) as e:
            # ValueError: a bad or taken name, or a held-back file. OSError: users.txt cannot
            # be written here (read-only mount, e.g. a Kubernetes Secret): say so.
            status = 409 if isinstance(e, HeldBack) else 400 if isinstance(e, ValueError) \
                else 503
            message = str(e) if isinstance(e, ValueError) \
                else f"cannot write {users.path}: {e.strerror}"
            if as_json:
                abort(status, message)
            return users_page(error=message, form={"name": name}), status
        if as_json:
            return jsonify(name=name, password=password, instructor=instructor), 201
        # The password is shown once, to the instructor who asked for it; never logged.
        return users_page(added={"name": name, "password": password,
                                 "instructor": instructor}), 201

    return bp
