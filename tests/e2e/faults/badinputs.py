"""The bad inputs sent to each of the dashboard's routes, and what each sender must get.

Senders: `nobody` (no credentials), `participant` (a participant's real hub token) and
`instructor` (an instructor's real hub token). Each case says what each of them gets;
a sender it does not name gets what the route's kind gives the uninvited:

- instructor pages: nobody is sent to the hub's login (302), a participant gets 403;
- instructor APIs: nobody 401, a participant 403;
- `anyone`: the same answer for all three (no route matched, a public route).

"{user}" in a target or body becomes the sender's own name (an event is posted as
oneself: someone else's name is a different refusal, checked separately).

Targets are sent byte for byte (rawhttp.py) below the dashboard's prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MiB = 1024 * 1024
SENDERS = ("nobody", "participant", "instructor")
PAGE = {"nobody": {302}, "participant": {403}}
API = {"nobody": {401}, "participant": {403}}
BAD = {400, 404}  # an instructor's answer to a malformed name: invalid (400), or no such


@dataclass(frozen=True)
class Case:
    method: str
    rule: str  # the app's route this case is for (every route has cases: test checks)
    target: str  # below the prefix, sent as is
    expect: dict[str, set[int]]
    body: bytes | None = None
    content_type: str | None = None
    says: str = ""  # in the message of the 4xx answers of `says_to`
    accept: str = "application/json"
    says_to: tuple[str, ...] = ("instructor",)  # the senders the route serves

    def __str__(self) -> str:
        shown = self.target if len(self.target) < 60 else self.target[:57] + "..."
        return f"{self.method} {shown}" + (f" [{len(self.body)} B]" if self.body else "")


def page(rule: str, target: str, instructor: set[int], says: str = "") -> Case:
    return Case("GET", rule, target, {**PAGE, "instructor": instructor}, says=says,
                accept="text/html")


def api(method: str, rule: str, target: str, instructor: set[int], says: str = "",
        body: bytes | None = None, content_type: str | None = None) -> Case:
    return Case(method, rule, target, {**API, "instructor": instructor}, body, content_type,
                says)


def anyone(method: str, rule: str, target: str, status: set[int], says: str = "") -> Case:
    return Case(method, rule, target, dict.fromkeys(SENDERS, status), says=says)


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def event(**fields: object) -> bytes:
    return as_json({"type": "save-notebook", "user": "{user}", "path": "bad/in.ipynb",
                    **fields})


def posted(body: bytes, status: int, says: str, content_type: str = "application/json"
           ) -> Case:
    """POST /events by each sender as themselves: refused alike, nobody with 401."""
    return Case("POST", "/events", "/events",
                {"nobody": {401}, "participant": {status}, "instructor": {status}},
                body, content_type, says, says_to=("participant", "instructor"))


# Names in paths: traversal, control characters, lengths. A raw ".." never arrives (the
# proxy resolves it: test_bad_inputs checks where such a path goes); %2F does, inside one
# segment. A target whose decoded path matches no route is a 404 for everybody, and one
# with "//" in it werkzeug's 308 to the single slash (the test works both out).
BAD_PATHS = ["..%2F..%2Fetc%2Fpasswd.ipynb", "a%00b.ipynb", "%2Fetc%2Fshadow.ipynb",
             "a%5Cb.ipynb", "a/" * 600 + "x.ipynb", "a%0D%0Ab.ipynb", "day1/notes.txt"]
# Odd but valid: a notebook nobody has (an empty summary, or 404 where there is none).
ODD_PATHS = ["%E2%80%AE.ipynb", "%F0%9F%98%80/%C3%BC.ipynb", "a%20b%09c.ipynb"]
BAD_USERS = ["..%2F..", ".hidden", "%00", "a%2Fb", "u" * 70, "%E2%80%AEevil", "root", "-rf"]


def with_names(rule: str, make: str) -> list[Case]:
    """A case per bad name for a route with a user and/or a notebook path."""
    cases = []
    if "{path}" in make:
        cases += [make_case(rule, make.format(user="probe1", path=bad), BAD)
                  for bad in BAD_PATHS]
        cases += [make_case(rule, make.format(user="probe1", path=odd), {200, 404})
                  for odd in ODD_PATHS]
    if "{user}" in make:
        cases += [make_case(rule, make.format(user=bad, path="day1/intro.ipynb"), BAD)
                  for bad in BAD_USERS]
    return cases


def make_case(rule: str, target: str, instructor: set[int]) -> Case:
    if rule.startswith(("/summary", "/view", "/rendered", "/download")):
        return page(rule, target, instructor)
    if rule.startswith("/actions/"):
        return api("POST", rule, target, instructor)
    return api("GET", rule, target, instructor)


DEEP = b'{"a":' * 10_000 + b"1" + b"}" * 10_000

CASES: list[Case] = [
    # -- public ---------------------------------------------------------------------------
    anyone("GET", "/static/<path:filename>", "/static/..%2Fapp.py", {404}),
    anyone("GET", "/static/<path:filename>", "/static/dashboard.css%00", {404}),
    anyone("GET", "/static/<path:filename>", "/static/" + "x" * 5000, {404}),
    anyone("GET", "/health", "/health?x=%00&" + "y" * 3000, {200}),
    anyone("GET", "/oauth_callback", "/oauth_callback?code=x&state=..%2F..", {403},
           "OAuth state"),
    anyone("GET", "/oauth_callback", "/oauth_callback", {403}, "OAuth state"),
    # -- events: posting (participants' servers) -------------------------------------------
    posted(b'{"type": "save-notebook", "user": ', 400, "malformed JSON"),
    posted(DEEP, 400, "nested more than 8 levels"),
    posted(b"[" * 100_000 + b"]" * 100_000, 413, "at most"),
    posted(event(path=["a.ipynb"]), 400, "path"),
    posted(event(type=5), 400, "type"),
    posted(event(filename=7), 400, "filename"),
    posted(event(extra="x"), 400, "extra"),
    posted(event(path="../../etc/passwd.ipynb"), 400, "relative"),
    posted(event(path="bad/\x1b[31m.ipynb"), 400, "control characters"),
    posted(event(path="bad/" + "x" * 2000 + ".ipynb"), 400, "path"),
    posted(event(timestamp=10**30), 400, "digits"),
    posted(b'{"type": "save-notebook", "user": "{user}", "path": "\xff.ipynb"}', 400,
           "UTF-8"),
    posted(b"", 400, "expected a JSON object"),
    posted(b"type=save-notebook&user={user}", 400, "malformed JSON",
           "application/x-www-form-urlencoded"),
    posted(b"x" * (10 * MiB), 413, "at most"),
    Case("POST", "/events", "/events", {"nobody": {401}, "participant": {403},
                                        "instructor": {403}},
         event(user="someone-else"), "application/json", "belongs to",
         says_to=("participant", "instructor")),
    # -- events: listing (instructors) -------------------------------------------------------
    api("GET", "/events", "/events?user=a&user=b", {400}, "given 2 times"),
    api("GET", "/events", "/events?nope=1", {400}, "cannot filter on"),
    api("GET", "/events", "/events?%FF%FE=1", {400}, "cannot filter on"),
    api("GET", "/events", "/events?user=%00..%2F", {200}),
    # -- pages -------------------------------------------------------------------------------
    page("/", "/?x=%00", {200}),
    *with_names("/summary/<path:path>", "/summary/{path}"),
    *with_names("/view/<user>/<path:path>", "/view/{user}/{path}"),
    *with_names("/rendered/<user>/<path:path>", "/rendered/{user}/{path}"),
    *with_names("/download/<path:path>", "/download/{path}"),
    page("/handout", "/handout?folder=..%2F..", {200}),
    page("/users", "/users?x=%00", {200}),
    # -- what the pages poll -----------------------------------------------------------------
    api("GET", "/api/index", "/api/index?since=%00", {200}),
    *with_names("/api/summary/<path:path>", "/api/summary/{path}"),
    api("GET", "/api/summary/<path:path>", "/api/summary/day1/intro.ipynb?since=%C2%B2",
        {400}, "since must be"),
    api("GET", "/api/summary/<path:path>",
        "/api/summary/day1/intro.ipynb?since=" + "9" * 40, {400}, "since must be"),
    api("GET", "/api/actions", "/api/actions?limit=-1", {400}, "limit must be"),
    api("GET", "/api/actions", "/api/actions?limit=1e3", {400}, "limit must be"),
    # -- actions -----------------------------------------------------------------------------
    *with_names("/actions/restart/<user>", "/actions/restart/{user}"),
    *with_names("/actions/start/<user>", "/actions/start/{user}"),
    # A hand-out takes no input: a body is refused from its headers (anonymous: 401).
    Case("POST", "/actions/handout", "/actions/handout",
         {"nobody": {401}, "participant": {413}, "instructor": {413}},
         b"{}" + b" " * (100 * 1024), "application/json", "at most"),
    # -- the live class view ---------------------------------------------------------------
    page("/live", "/live?stuck_error=0", {400}, "minutes from 1 to 240"),
    page("/live", "/live?behind=" + "9" * 5000, {400}, "minutes from 1 to 240"),
    page("/live", "/live?lesson=..%2F..%2Fetc%2Fpasswd.ipynb", {200, 400, 404}),
    api("GET", "/live/api/board", "/live/api/board?since=%00&lesson=%00", {200, 400, 404}),
    api("GET", "/live/api/board", "/live/api/board?stuck_error=%C2%B2", {400}, "minutes"),
    api("GET", "/live/stream", "/live/stream?behind=-1", {400}, "minutes"),
    api("GET", "/live/chart.svg", "/live/chart.svg?lesson=" + "x" * 3000, {200, 400, 404}),
    api("GET", "/live/api/stats", "/live/api/stats?x=%00", {200}),
    api("GET", "/live/export.csv", "/live/export.csv?lesson=%00", {200}),
    api("GET", "/live/export.json", "/live/export.json?x=%00", {200}),
    # A participant's own help requests, nobody else's, whatever they ask for.
    Case("GET", "/live/help/mine", "/live/help/mine?user=probe2",
         {"nobody": {401}, "participant": {200}, "instructor": {200}}),
    api("GET", "/live/api/help", "/live/api/help?x=%00", {200}),
    api("POST", "/live/help/<request_id>/done", "/live/help/abc/done", {400}, "whole number"),
    api("POST", "/live/help/<request_id>/done", "/live/help/" + "9" * 40 + "/done", {400},
        "whole number"),
    api("POST", "/live/help/<request_id>/done", "/live/help/999999/done", {404},
        "no help request"),
    api("POST", "/live/push", "/live/push", {400}, "kind must be",
        as_json({"kind": "evil", "source": "x"}), "application/json"),
    api("POST", "/live/push", "/live/push", {400}, "source",
        as_json({"kind": "code", "source": 5}), "application/json"),
    api("POST", "/live/push", "/live/push", {400}, "kind and source", DEEP,
        "application/json"),
    # "Deliver again" takes no input: a body is refused from its headers (anonymous: 401).
    Case("POST", "/live/push/again", "/live/push/again",
         {"nobody": {401}, "participant": {413}, "instructor": {413}},
         b"{}" + b" " * (100 * 1024), "application/json", "at most"),
    api("GET", "/live/api/push", "/live/api/push?x=%00", {200}),
    # -- adding people (JSON) -----------------------------------------------------------------
    api("POST", "/users", "/users", {400}, "expected a JSON object",
        b'{"name": ', "application/json"),
    api("POST", "/users", "/users", {400}, "expected a JSON object", DEEP,
        "application/json"),
    api("POST", "/users", "/users", {400}, "unknown field", as_json({"name": "zed", "x": 1}),
        "application/json"),
    api("POST", "/users", "/users", {400}, "instructor must be",
        as_json({"name": "zed", "instructor": "yes"}), "application/json"),
    api("POST", "/users", "/users", {400}, "name must be", as_json({"name": 123}),
        "application/json"),
    api("POST", "/users", "/users", {400}, "invalid username",
        as_json({"name": "../../etc"}), "application/json"),
    api("POST", "/users", "/users", {400}, "invalid username",
        as_json({"name": "x\u202ey"}), "application/json"),
    api("POST", "/users", "/users", {400}, "reserved", as_json({"name": "root"}),
        "application/json"),
    # -- materials (instructors' uploads) -----------------------------------------------------
    Case("POST", "/materials", "/materials", {**PAGE, "instructor": {400}},
         b"--x\r\ngarbage", "multipart/form-data; boundary=x", accept="text/html"),
]


@dataclass
class Tally:
    """What was sent and what came back, for the report."""

    by_status: dict[int, int] = field(default_factory=dict)
    requests: int = 0

    def add(self, status: int) -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
