"""The Flask application: wiring only. Routes live in their own modules."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from . import api
from .auth import AuthGate, hub_gate, load_secret
from .events import EventStore
from .settings import Settings


def create_app(settings: Settings, gate: AuthGate | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024  # an event is a few hundred bytes
    prefix = settings.prefix.rstrip("/")
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if gate is None:
        secret = load_secret(settings.state_dir / "cookie_secret")
        gate = hub_gate(settings.prefix, settings.instructor_scope, secret)
    store = EventStore(settings.state_dir / "events.sqlite")
    app.extensions["dashboard"] = {"settings": settings, "gate": gate, "store": store}

    app.register_blueprint(api.blueprint(store, gate), url_prefix=prefix)

    @app.get(f"{prefix}/health")
    def health():
        return jsonify(status="ok", events=store.count())

    @app.get(f"{prefix}/oauth_callback")
    def oauth_callback():
        if gate.login is None:
            return jsonify(error="no hub login configured"), 404
        return gate.login.callback(gate)

    @app.errorhandler(HTTPException)
    def as_json(e: HTTPException):
        # Every error, including Flask's own 404/405/413, is a readable JSON message.
        return jsonify(error=e.name, message=e.description, status=e.code), e.code

    return app
