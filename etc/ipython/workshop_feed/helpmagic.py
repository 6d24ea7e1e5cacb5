"""`%help`: a participant asks the instructor for help from inside their notebook.

    %help my plot stays empty      ask (or change what an open request says)
    %help                          where am I in the queue? was it answered?
    %help cancel                   withdraw the open request

The request is a `help` event posted to the dashboard's events API with the participant's
own token (so it can only ever be theirs); the answer about the queue comes from
`GET .../live/help/mine`, which shows a participant their own requests and nothing else.
Unlike the execution feed this waits for the dashboard (a few seconds at most): the
participant asked a question and reads the answer in the cell's output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .transport import Answer, request

MESSAGE_CHARS = 500  # the dashboard's limit (helpdesk.py)
TIMEOUT = 4.0
CANCEL_WORDS = frozenset({"cancel", "withdraw", "done", "solved"})

Request = Callable[..., Answer]


def _clock(iso: str | None) -> str:
    try:
        return datetime.fromisoformat(str(iso)).astimezone().strftime("%H:%M")
    except ValueError:
        return "?"


def describe(mine: Any) -> str:
    """What the participant reads about their requests (GET .../live/help/mine)."""
    if not isinstance(mine, dict):
        return "The dashboard's answer could not be read."
    open_request = mine.get("open")
    if isinstance(open_request, dict):
        return (f"Your request from {_clock(open_request.get('since'))} is in the queue: "
                f"number {open_request.get('position')} of {open_request.get('waiting')} "
                "waiting. `%help cancel` withdraws it.")
    recent = mine.get("recent") or []
    if recent and isinstance(recent[0], dict) and recent[0].get("status") == "done":
        last = recent[0]
        return (f"Your request from {_clock(last.get('since'))} was marked done by "
                f"{last.get('closed_by')} at {_clock(last.get('closed_at'))}. "
                "`%help <what you need>` asks again.")
    return "You have no open help request. `%help <what you need>` asks for help."


def unreachable(answer: Answer) -> str:
    if answer.status == 0:
        return ("The dashboard cannot be reached right now: nothing was sent. Raise your "
                "hand, or try again in a minute.")
    if answer.status == 429:
        return f"Too many requests in a row: try again in {answer.retry_after:.0f} s."
    return f"The dashboard refused this ({answer.status}): {answer.reason}"


class HelpMagic:
    def __init__(self, events_url: str, token: str, user: str, path: str | None, *,
                 send: Request = request, say: Callable[[str], None] = print) -> None:
        self.events_url = events_url
        self.mine_url = events_url.rsplit("/events", 1)[0] + "/live/help/mine"
        self.token = token
        self.user = user
        self.path = path
        self.send = send
        self.say = say

    def __call__(self, line: str) -> None:
        try:
            self.say(self.run(line))
        except Exception as e:  # a magic that fails must say so, never raise a traceback
            self.say(f"%help did not work: {type(e).__name__}: {e}")

    def run(self, line: str) -> str:
        text = " ".join(str(line).split())
        if text.lower() in CANCEL_WORDS:
            answer = self._post({"action": "cancel"})
            if not 200 <= answer.status < 300:
                return unreachable(answer)
            return "Your help request is withdrawn."
        if text:
            if len(text) > MESSAGE_CHARS:
                text = text[:MESSAGE_CHARS - 1] + "…"
            answer = self._post({"action": "ask", "message": text})
            if not 200 <= answer.status < 300:
                return unreachable(answer)
            status = self.send("GET", self.mine_url, self.token, timeout=TIMEOUT)
            if status.status != 200:
                return "Your instructor has your request."
            return "Your instructor has your request. " + describe(status.body)
        status = self.send("GET", self.mine_url, self.token, timeout=TIMEOUT)
        return describe(status.body) if status.status == 200 else unreachable(status)

    def _post(self, fields: dict[str, Any]) -> Answer:
        event = {"type": "help", "user": self.user, **fields}
        if self.path:
            event["path"] = self.path
        return self.send("POST", self.events_url, self.token,
                         json.dumps(event).encode(), timeout=TIMEOUT)
