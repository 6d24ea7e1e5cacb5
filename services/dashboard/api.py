"""The events API: participants' servers post saves; instructors read them.

A post is checked in the order that costs least first: the token (cached), the
participant's rate, then the body's size, its JSON (bounded depth and numbers), the
event's fields, and last whether it is that participant's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from flask import Blueprint, abort, jsonify, request

from . import safejson
from .auth import AuthGate
from .events import EventStore, InvalidEvent, StoreFull, parse_event
from .ratelimit import TokenBuckets

EventListener = Callable[[dict], None]

# A save event is ~200 bytes; the execution feed posts batches of a few hundred small
# records. 64 KiB holds such a batch and keeps a flood of posts cheap to refuse.
EVENT_BODY_MAX = 64 * 1024
# Posts per participant. What a real one sends: an autosave per open, changed notebook
# every 30 s; "save all" or a reconnect after a dashboard restart, a few tens at once;
# the execution feed, one batch a second at most while cells run. Thirty at once and two
# a second after that covers all of it together; a loop posting faster gets 429.
EVENT_BURST = 30
EVENT_RATE = 2.0  # per second


def blueprint(store: EventStore, gate: AuthGate,
              listeners: list[EventListener] | None = None, *,
              rate: float = EVENT_RATE, burst: int = EVENT_BURST) -> Blueprint:
    bp = Blueprint("events", __name__)
    listeners = listeners if listeners is not None else []
    buckets = TokenBuckets(rate, burst)

    @bp.post("/events")
    def post_event():
        user = gate.api_user()
        wait = buckets.take(user["name"])
        if wait:
            abort(429, f"too many events from {user['name']}: at most {burst} at once, "
                       f"then {rate:g} a second", retry_after=math.ceil(wait))
        request.max_content_length = EVENT_BODY_MAX
        data = request.get_data(cache=False)  # 413 past the limit, before reading it
        try:
            body = safejson.loads(data) if data.strip() else None
            event = parse_event(body)
        except safejson.UnsafeJSON as e:
            abort(400, str(e))
        except InvalidEvent as e:
            abort(400, f"invalid event: {e}")
        if event.user != user["name"]:
            abort(403, f"this token belongs to {user['name']!r}, not {event.user!r}")
        try:
            stored = store.upsert(event)
        except StoreFull as e:
            abort(403, str(e))
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
