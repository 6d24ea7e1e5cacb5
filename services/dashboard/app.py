"""The Flask application: wiring only. Routes live in their own modules."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from workshop.addresses import Addresses
from workshop.hubapi import HubAPI
from workshop.keys import persistent_secret
from workshop.materials import Ledger
from workshop.roster import RosterFile

from . import actions, api, pages, people, safejson
from .actionlog import ActionLog
from .auth import AuthGate, hub_gate
from .capacity import host_memory
from .contents_source import choose_source
from .door import FORM_BODY_MAX, Door
from .events import EventStore
from .live import Live
from .render import Renderer
from .servers import Servers
from .settings import Settings
from .worker import RenderWorker


class SafeJSONProvider(DefaultJSONProvider):
    """request.get_json() in every route parses with safejson's bounds: a deep or huge
    body is a ValueError (Flask's 400), not a RecursionError (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return safejson.loads(s)


def create_app(settings: Settings, gate: AuthGate | None = None, *,
               start_worker: bool = True, servers: Servers | None = None) -> Flask:
    prefix = settings.prefix.rstrip("/")
    app = Flask(__name__, static_url_path=f"{prefix}/static")
    app.json = SafeJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = FORM_BODY_MAX  # each route's own: Door.body_limit
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.output_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if gate is None:
        secret = persistent_secret(settings.state_dir / "cookie_secret").encode()
        gate = hub_gate(settings.prefix, settings.instructor_scope, secret)
    store = EventStore(settings.state_dir / "events.sqlite")
    users = RosterFile(settings.users_file)
    addresses = Addresses.from_env()

    def server_url(user: str) -> tuple[str, dict[str, str]]:
        # Through the proxy on loopback, naming the participant's own host: with
        # subdomains the proxy routes by host.
        return f"{settings.proxy_url}/user/{user}/", {"Host": addresses.user_host(user)}

    source = choose_source(settings, server_url)  # homes on disk, or participants' servers
    renderer = Renderer(settings.output_dir, max_cells=settings.summary_cells,
                        max_lines=settings.summary_lines,
                        view_link=lambda user, path: f"{prefix}/view/{user}/{path}")
    # The summary follows a save at once unless more saves of that notebook are waiting;
    # a rescan picks up notebooks changed without a save event (terminal, git).
    worker = RenderWorker(renderer, source, summary_lag=0.25, rescan_interval=300)
    if start_worker:
        worker.start()  # catches up on whatever is missing or stale, off this thread
    started = time.time()
    if servers is None:
        servers = Servers(HubAPI() if "JUPYTERHUB_API_TOKEN" in os.environ else None)
    door = Door(settings.prefix, gate.has_credentials)
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
            "running_servers": servers.count(),  # the hub's answer, kept 3 s (Servers)
        }

    app.extensions["dashboard"] = {"settings": settings, "gate": gate, "store": store,
                                   "renderer": renderer, "worker": worker, "door": door}

    @app.before_request
    def body_limit():
        # The HTTP server refused bigger bodies already (httpserver.py); this is the same
        # table for the app alone (tests, another server).
        request.max_content_length = door.body_limit(request.method, request.path)

    lab_url = (lambda user: addresses.user(user, "lab/tree/")) if addresses.subdomains else None
    live = Live(settings, users, servers, lab_url, source, start_pusher=start_worker)
    app.extensions["dashboard"]["live"] = live
    app.register_blueprint(api.blueprint(store, gate, [on_event, live.on_event]),
                           url_prefix=prefix)
    app.register_blueprint(pages.blueprint(gate, renderer, source, users, stats, servers,
                                           actions_log, lab_url), url_prefix=prefix)
    app.register_blueprint(actions.blueprint(
        gate, servers, actions_log, users, materials=settings.materials_dir,
        ledger=Ledger(settings.ledger_dir), home_root=settings.home_root), url_prefix=prefix)
    app.register_blueprint(people.blueprint(gate, users), url_prefix=prefix)
    live.register(app, gate, prefix)  # the live class view: board, help, push, export

    @app.get(f"{prefix}/health")
    def health():
        # Anyone may ask whether the dashboard answers (monitors, the stack's own health
        # check); the figures, and the hub call behind them, are for instructors.
        user = gate.current_user()
        if user is None or not gate.is_instructor(user):
            return jsonify(status="ok")
        return jsonify(stats())

    @app.get(f"{prefix}/oauth_callback")
    def oauth_callback():
        if gate.login is None:
            return jsonify(error="no hub login configured"), 404
        return gate.login.callback(gate)

    @app.errorhandler(HTTPException)
    def readable(e: HTTPException):
        # Every error, including Flask's own 404/405/413, is a readable message: a small
        # page for a browser, JSON for everything else. Its headers (Retry-After, Allow)
        # are kept.
        if request.accept_mimetypes.best == "text/html":
            html = render_template("pages/error.html", error=e)
            response = pages.page_headers(Response(html, status=e.code, mimetype="text/html"))
        else:
            response = jsonify(error=e.name, message=e.description, status=e.code)
            response.status_code = e.code or 500
        for name, value in e.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    return app
