"""Events: what participants' servers report (pydantic models) and where they are kept.

The wire format is the one the save hook (etc/jupyter/jupyter_server_config.py) posts::

    {"type": "save-notebook", "user": "alice", "filename": "intro.ipynb",
     "path": "day1/intro.ipynb", "timestamp": "2026-11-22T10:00:00+00:00"}

Only the fields a type declares are accepted (anything else is a 400): a participant
holds a valid token and may post whatever their kernel can send. The `id` and the stored
`timestamp` (when the dashboard received the event) are the dashboard's; the sender's
own clock is kept as `client_timestamp` when it is near the dashboard's, else dropped.

An event is identified by (type, user, key): a new save of the same notebook updates the
earlier event and keeps its id. Events live in SQLite, so a restart loses nothing.

A new kind of event (the execution feed's `execution`, `help` requests): a model that
subclasses `EventBase` with its own `type: Literal[...]` and `key()`, decorated with
`@event_type` (in its own module, imported by app.py). It is then accepted, and its
fields stored, listed and filterable like the others; any other type is a 400.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from .sqlitedb import open_store

# The save hook queues at most 100 events, each given up after 1 s: an event older than
# an hour is not a late save but a wrong clock. Clocks on one host agree; five minutes
# ahead leaves room for a participant's container or pod with its own.
CLIENT_CLOCK_BEHIND = timedelta(hours=1)
CLIENT_CLOCK_AHEAD = timedelta(minutes=5)
# Distinct events one participant may have of one type (for saves: notebooks). A class
# uses tens of notebooks over several days; without a ceiling, distinct paths posted in a
# loop would grow the database and the render queue without end.
MAX_EVENTS_PER_USER = 500

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _plain_text(value: str) -> str:
    # Shown on the instructor's page and written to logs: no control characters. (Lone
    # surrogates, "\ud800" in JSON, pydantic refuses as any string.)
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _relative_path(value: str) -> str:
    # The dashboard reads the file below the participant's home: never outside it.
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or "\\" in value:
        raise ValueError("must be a path relative to the home directory, without '..'")
    return str(p)


PlainText = Annotated[str, AfterValidator(_plain_text)]
UserName = Annotated[PlainText, Field(min_length=1, max_length=64)]
HomePath = Annotated[PlainText, Field(min_length=1, max_length=1024),
                     AfterValidator(_relative_path)]
FileName = Annotated[PlainText, Field(min_length=1, max_length=255)]


class EventBase(BaseModel):
    """What every event has: who sent it, and (optionally) their clock's idea of when."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str
    user: UserName
    # Posted as "timestamp"; the stored "timestamp" is the dashboard's receipt time.
    client_timestamp: datetime | None = Field(default=None, validation_alias="timestamp")

    def key(self) -> str:
        """What makes two events of this type and user the same thing (stored as `path`)."""
        raise NotImplementedError

    @field_validator("client_timestamp")
    @classmethod
    def _near_now(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # taken as UTC rather than refused: nothing is lost
            value = value.replace(tzinfo=UTC)
        # Aware datetimes subtract without converting, so year 9999 cannot overflow here.
        if not -CLIENT_CLOCK_BEHIND <= value - utcnow() <= CLIENT_CLOCK_AHEAD:
            return None  # a wrong clock loses its reading, never the event
        return value.astimezone(UTC)

    @field_serializer("client_timestamp")
    def _iso(self, value: datetime | None) -> str | None:
        # "+00:00" as Python's isoformat() writes it, like the stored timestamp.
        return value.isoformat() if value else None


# Every event type the dashboard accepts, by its `type`: filled by @event_type.
EVENT_MODELS: dict[str, type[EventBase]] = {}


def event_type(model: type[EventBase]) -> type[EventBase]:
    """Accept events of `model`'s type (a class decorator)."""
    EVENT_MODELS[get_args(model.model_fields["type"].annotation)[0]] = model
    return model


def stored_fields() -> frozenset[str]:
    """What a stored event may show and be filtered on: the models' fields, the receipt
    time and the id. Rows written by older versions are cut down to these when read."""
    return frozenset({"id", "timestamp"}.union(*(m.model_fields for m in EVENT_MODELS.values())))


@event_type
class SaveNotebook(EventBase):
    """A participant's server saved a notebook (the save hook)."""

    type: Literal["save-notebook"]
    path: HomePath
    filename: FileName | None = None

    def key(self) -> str:
        return self.path

    @model_validator(mode="after")
    def _complete(self) -> SaveNotebook:
        if not self.path.endswith(".ipynb"):
            raise ValueError("a save-notebook event needs a path ending in .ipynb")
        name = PurePosixPath(self.path).name
        if self.filename is None:
            self.filename = name
        elif self.filename != name:
            raise ValueError("filename must be the last part of path")
        return self


class InvalidEvent(ValueError):
    """A posted body that is not a valid event; the message says what is wrong."""


class StoreFull(RuntimeError):
    """A participant has as many distinct events of a type as they may keep."""


def _printable(text: str, limit: int = 60) -> str:
    # Error messages can carry a client's field names: keep them short and printable.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[:limit] + "…"


def describe(error: ValidationError) -> str:
    """A readable one-line account of what is wrong with a posted event."""
    parts = []
    for e in error.errors()[:10]:
        where = ".".join(_printable(str(x)) for x in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_event(body: Any) -> EventBase:
    """The event `body` (parsed JSON) describes, or InvalidEvent saying why not."""
    if not isinstance(body, dict):
        raise InvalidEvent("expected a JSON object with type, user, path")
    kind = body.get("type")
    model = EVENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(EVENT_MODELS))
        raise InvalidEvent(f"type: must be one of: {known}")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise InvalidEvent(describe(e)) from None


class EventStore:
    """SQLite-backed events, safe to use from the web server's threads."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS events (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        type      TEXT NOT NULL,
        user      TEXT NOT NULL,
        path      TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data      TEXT NOT NULL,
        UNIQUE (type, user, path)
    )
    """

    def __init__(self, path: str | Path, *, max_per_user: int = MAX_EVENTS_PER_USER) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_per_user = max_per_user
        self._lock = threading.Lock()
        self._db = open_store(self.path, self.SCHEMA, synchronous_normal=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def upsert(self, event: EventBase, received: datetime | None = None) -> dict[str, Any]:
        """Store `event` as received at `received` (now); the same key keeps its id.

        Raises StoreFull when the event is new and its user already has `max_per_user`
        events of its type.
        """
        data = {**event.model_dump(mode="json"),
                "timestamp": (received or utcnow()).astimezone(UTC).isoformat()}
        key = {"type": event.type, "user": event.user, "path": event.key()}
        with self._lock:
            known = self._db.execute(
                "SELECT 1 FROM events WHERE type = :type AND user = :user AND path = :path",
                key).fetchone()
            if not known:
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM events WHERE type = :type AND user = :user",
                    key).fetchone()
                if count >= self.max_per_user:
                    raise StoreFull(f"{event.user} already has {count} {event.type} events, "
                                    "the most one participant may have")
            row = self._db.execute(
                """INSERT INTO events (type, user, path, timestamp, data)
                   VALUES (:type, :user, :path, :timestamp, :data)
                   ON CONFLICT (type, user, path)
                   DO UPDATE SET timestamp = excluded.timestamp, data = excluded.data
                   RETURNING id""",
                {**key, "timestamp": data["timestamp"], "data": json.dumps(data)},
            ).fetchone()
        return {**data, "id": row[0]}

    def query(self, filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Events whose fields equal the given values (as strings), oldest id first."""
        clauses, params = [], []
        known = stored_fields()
        for name, value in (filters or {}).items():
            if name not in known:
                raise ValueError(f"cannot filter on {_printable(name)!r}; "
                                 f"fields are: {', '.join(sorted(known))}")
            if name == "id":
                clauses.append("CAST(id AS TEXT) = ?")
            else:
                # Every field is in the JSON document; compare its text form.
                clauses.append("CAST(json_extract(data, ?) AS TEXT) = ?")
                params.append(f'$."{name}"')
            params.append(value)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, data FROM events{where} ORDER BY id", params
            ).fetchall()
        # The row's id last: a field in an old row's document can never replace it.
        return [{**{k: v for k, v in json.loads(d).items() if k in known}, "id": i}
                for i, d in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

