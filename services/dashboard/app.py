"""The Flask application: wiring only. Routes live in their own modules."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from workshop.addresses import Addresses
from workshop.hubapi import HubAPI
from workshop.keys import persistent_secret
from workshop.materials import Ledger
from workshop.roster import RosterFile

from . import actions, api, pages, people
from .actionlog import ActionLog
from .auth import AuthGate, hub_gate
from .capacity import host_memory
from .contents_source import choose_source
from .events import EventStore
from .render import Renderer
from .servers import Servers
from .settings import Settings
from .worker import RenderWorker


def create_app(settings: Settings, gate: AuthGate | None = None, *,
               start_worker: bool = True) -> Flask:
    prefix = settings.prefix.rstrip("/")
    app = Flask(__name__, static_url_path=f"{prefix}/static")
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024  # an event is a few hundred bytes
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.output_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if gate is None:
        secret = persistent_secret(settings.state_dir / "cookie_secret").encode()
        gate = hub_gate(settings.prefix, settings.instructor_scope, secret)
    store = EventStore(settings.state_dir / "events.sqlite")
    users = RosterFile(settings.users_file)
    source = choose_source(settings)  # homes on disk, or participants' servers
    renderer = Renderer(settings.output_dir, max_cells=settings.summary_cells,
                        max_lines=settings.summary_lines,
                        view_link=lambda user, path: f"{prefix}/view/{user}/{path}")
    # The summary follows a save at once unless more saves of that notebook are waiting;
    # a rescan picks up notebooks changed without a save event (terminal, git).
    worker = RenderWorker(renderer, source, summary_lag=0.25, rescan_interval=300)
    if start_worker:
        worker.start()  # catches up on whatever is missing or stale, off this thread
    started = time.time()
    servers = Servers(HubAPI() if "JUPYTERHUB_API_TOKEN" in os.environ else None)
    actions_log = ActionLog(settings.state_dir / "actions.sqlite")

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "save-notebook":
            worker.enqueue(event["user"], event["path"])

    def stats() -> dict[str, Any]:
        numbers = worker.stats()
        last = numbers.get("last_render")
        return {
            "status": "ok",
            "events": store.count(),
            "queue": numbers["queue"],
            "renders": numbers["renders"],
            "render_errors": numbers["errors"],
            "last_render": datetime.fromtimestamp(last, UTC).isoformat() if last else None,
            "last_render_seconds": numbers["last_duration"],
            "uptime_seconds": round(time.time() - started),
            "host_memory": host_memory(),
            "running_servers": servers.count(),
        }

    app.extensions["dashboard"] = {"settings": settings, "gate": gate, "store": store,
                                   "renderer": renderer, "worker": worker}
    app.register_blueprint(api.blueprint(store, gate, [on_event]), url_prefix=prefix)
    addresses = Addresses.from_env()
    lab_url = (lambda user: addresses.user(user, "lab/tree/")) if addresses.subdomains else None
    app.register_blueprint(pages.blueprint(gate, renderer, source, users, stats, servers,
                                           actions_log, lab_url), url_prefix=prefix)
    app.register_blueprint(actions.blueprint(
        gate, servers, actions_log, users, materials=settings.materials_dir,
        ledger=Ledger(settings.ledger_dir), home_root=settings.home_root), url_prefix=prefix)
    app.register_blueprint(people.blueprint(gate, users), url_prefix=prefix)

    @app.get(f"{prefix}/health")
    def health():
        return jsonify(stats())

    @app.get(f"{prefix}/oauth_callback")
    def oauth_callback():
        if gate.login is None:
            return jsonify(error="no hub login configured"), 404
        return gate.login.callback(gate)

    @app.errorhandler(HTTPException)
    def readable(e: HTTPException):
        # Every error, including Flask's own 404/405/413, is a readable message: a small
        # page for a browser, JSON for everything else.
        if request.accept_mimetypes.best == "text/html":
            html = render_template("pages/error.html", error=e)
            return pages.page_headers(Response(html, status=e.code, mimetype="text/html"))
        return jsonify(error=e.name, message=e.description, status=e.code), e.code

    return app
