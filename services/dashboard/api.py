"""The events API: participants' servers post saves; instructors read them."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, abort, jsonify, request
from pydantic import ValidationError

from .auth import AuthGate
from .events import Event, EventStore, describe

EventListener = Callable[[dict], None]


def blueprint(store: EventStore, gate: AuthGate,
              listeners: list[EventListener] | None = None) -> Blueprint:
    bp = Blueprint("events", __name__)
    listeners = listeners if listeners is not None else []

    @bp.post("/events")
    def post_event():
        user = gate.api_user()
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except json.JSONDecodeError as e:
            abort(400, f"malformed JSON: {e}")
        if not isinstance(body, dict):
            abort(400, "expected a JSON object with type, user, path")
        try:
            event = Event.model_validate(body)
        except ValidationError as e:
            abort(400, f"invalid event: {describe(e)}")
        if event.user != user["name"]:
            abort(403, f"this token belongs to {user['name']!r}, not {event.user!r}")
        stored = store.upsert(event)
        for listener in listeners:
            listener(stored)  # must only enqueue: the request never waits for rendering
        return jsonify(stored), 201

    @bp.get("/events")
    def list_events():
        gate.api_instructor()
        filters = {}
        for name in request.args:
            values = request.args.getlist(name)
            if len(values) > 1:
                abort(400, f"field {name!r} given {len(values)} times; give it once")
            filters[name] = values[0]
        try:
            return jsonify(store.query(filters))
        except ValueError as e:
            abort(400, str(e))

    return bp
