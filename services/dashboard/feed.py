"""The execution feed's wire format: batches of executed cells from participants' kernels.

The kernel extension (etc/ipython/workshop_feed) posts, with the participant's own token,
to the events API (api.py: token, per-participant rate, 64 KiB, depth 8)::

    {"type": "executions", "user": "alice", "kernel": "3f2a...", "dropped": 0,
     "timestamp": "...", "executions": [
        {"seq": 17, "path": "day1/intro.ipynb", "cell": "a1b2c3d4", "count": 5,
         "ok": false, "error": {"name": "NameError", "message": "name 'x' is not defined"},
         "duration": 0.0123, "at": "2026-11-22T10:00:00+00:00", "head": "print(x)",
         "source_hash": "9f86d081884c7d65"}]}

Everything in it is the participant's to choose except whose token sent it: numbers are
strict (no "5" for 5, no true for 1), text is bounded and free of control characters
(newlines and tabs are allowed in source heads and messages; the board shows them as
text), an execution's `ok` and `error` agree. The events store keeps each participant's
latest batch as one event (key "feed"); every execution goes to the feed store
(feedstore.py), once, by (user, kernel, seq).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_serializer,
    field_validator,
    model_validator,
)

from .events import EventBase, HomePath, PlainText, event_type

# A batch: the sender's own limit (sender.py); the events API's 64 KiB holds it.
MAX_BATCH = 200
# Text the board shows: a little above what the kernel extension sends (record.py), so
# a real kernel is never refused and nothing longer is stored.
MAX_HEAD_CHARS = 400
MAX_HEAD_LINES = 5
MAX_MESSAGE_CHARS = 500
MAX_NAME_CHARS = 120

_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ID = r"^[A-Za-z0-9_-]+$"


def _multiline(value: str) -> str:
    if _CONTROL_BUT_LINES.search(value):
        raise ValueError("must not contain control characters other than newline and tab")
    return value


def _few_lines(value: str) -> str:
    if value.count("\n") >= MAX_HEAD_LINES:
        raise ValueError(f"at most {MAX_HEAD_LINES} lines")
    return value


StrictCount = Annotated[int, Field(strict=True, ge=0, le=10**12)]
Seconds = Annotated[float, Field(strict=True, ge=0, le=10**7)]
Multiline = Annotated[str, AfterValidator(_multiline)]
CellId = Annotated[str, Field(min_length=1, max_length=64, pattern=_ID)]
KernelId = Annotated[str, Field(min_length=1, max_length=64, pattern=_ID)]
SourceHash = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


class ExecutionError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[PlainText, Field(min_length=1, max_length=MAX_NAME_CHARS)]
    message: Annotated[Multiline, Field(max_length=MAX_MESSAGE_CHARS)] = ""


class Execution(BaseModel):
    """One executed cell, as its kernel saw it."""

    model_config = ConfigDict(extra="forbid")

    seq: Annotated[int, Field(strict=True, ge=1, le=10**15)]
    path: HomePath | None = None
    cell: CellId | None = None
    count: StrictCount | None = None
    ok: StrictBool
    error: ExecutionError | None = None
    duration: Seconds = 0.0
    # The kernel's clock; kept only when near the dashboard's (EventBase's rule).
    at: datetime | None = None
    head: Annotated[Multiline, Field(max_length=MAX_HEAD_CHARS),
                    AfterValidator(_few_lines)] = ""
    source_hash: SourceHash | None = None

    @field_validator("at")
    @classmethod
    def _near_now(cls, value: datetime | None) -> datetime | None:
        return EventBase._near_now(value)

    @field_serializer("at")
    def _iso(self, value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    @model_validator(mode="after")
    def _ok_means_no_error(self) -> Execution:
        if self.ok != (self.error is None):
            raise ValueError("ok must be true exactly when there is no error")
        return self


@event_type
class ExecutionBatch(EventBase):
    """Cells one kernel ran since its last batch (the kernel extension's sender)."""

    type: Literal["executions"]
    kernel: KernelId
    # Records the kernel had to drop (its buffer was full while the dashboard was away):
    # a running count of this kernel's.
    dropped: StrictCount = 0
    executions: Annotated[list[Execution], Field(min_length=1, max_length=MAX_BATCH)]

    def key(self) -> str:
        return "feed"  # the events store keeps a participant's latest batch only

    @model_validator(mode="after")
    def _distinct(self) -> ExecutionBatch:
        if len({e.seq for e in self.executions}) != len(self.executions):
            raise ValueError("every execution of a batch needs its own seq")
        return self
