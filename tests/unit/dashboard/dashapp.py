"""The dashboard app as the HTTP tests use it: real code, the hub's token check a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from dashboard.app import create_app
from dashboard.auth import AuthGate, HubLogin
from dashboard.settings import INSTRUCTOR_SCOPE, Settings

ACCESS = "access:services!service=dashboard"
PREFIX = "/services/dashboard"
EVENTS = f"{PREFIX}/events"
USERS = {
    "alice-token": {"name": "alice", "kind": "user", "scopes": [ACCESS]},
    "bob-token": {"name": "bob", "kind": "user", "scopes": [ACCESS]},
    "teacher-token": {"name": "teacher", "kind": "user", "scopes": [ACCESS, INSTRUCTOR_SCOPE]},
    "no-access-token": {"name": "mallory", "kind": "user", "scopes": []},
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


ALICE, TEACHER = auth("alice-token"), auth("teacher-token")


def gate(user_for_token: Any = USERS.get, login: HubLogin | None = None) -> AuthGate:
    return AuthGate(user_for_token, access_scopes={ACCESS}, instructor_scope=INSTRUCTOR_SCOPE,
                    cookie_name="dash", cookie_path=f"{PREFIX}/", secret=b"s" * 32,
                    login=login)


def make_app(tmp: Path, **kwargs: Any) -> Flask:
    """The app without its render thread, everything it writes below `tmp`."""
    users = tmp / "users.txt"
    if not users.exists():
        users.write_text("alice:a\nbob:b\n[instructors]\nteacher:t\n")
    settings = Settings(prefix=f"{PREFIX}/", state_dir=tmp / "state", output_dir=tmp / "out",
                        home_root=tmp / "home", users_file=users,
                        materials_dir=tmp / "materials", ledger_dir=tmp / "ledger")
    kwargs.setdefault("gate", gate())
    return create_app(settings, start_worker=False, **kwargs)
