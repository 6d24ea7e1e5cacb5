"""What a request must show before its body is read: credentials, and a size its route takes.

Participants can send anything to the dashboard's port from their kernel. A body that is
read costs memory or disk before any route can refuse it (waitress spooled a 200 MiB
unauthenticated POST to a temporary file, then the app answered 401). So the limits are
decided from the request line and headers alone: by the HTTP server before it buffers a
body (httpserver.py), and by the app as Flask's `max_content_length` (app.py), from
this one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .actions import MAX_UPLOAD
from .api import EVENT_BODY_MAX

KiB = 1024
MiB = 1024 * KiB

# Forms and JSON other than events (add a participant, restart, hand out): under 1 KiB.
FORM_BODY_MAX = 64 * KiB
# Uploads of materials (instructors only): the upload's own cap plus multipart framing.
UPLOAD_BODY_MAX = MAX_UPLOAD + 1 * MiB
# A body without a token or a session cookie of ours: enough for a form re-posted from a
# page whose session expired (the app then sends the browser to the login), never more.
ANONYMOUS_BODY_MAX = 16 * KiB
# The largest body anything may send: the HTTP server's own backstop.
LARGEST_BODY = max(FORM_BODY_MAX, UPLOAD_BODY_MAX, EVENT_BODY_MAX)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    message: str


class Door:
    def __init__(self, prefix: str, has_credentials: Callable[[str, str], bool]) -> None:
        prefix = prefix.rstrip("/")
        self.routes = {("POST", f"{prefix}/events"): EVENT_BODY_MAX,
                       ("POST", f"{prefix}/materials"): UPLOAD_BODY_MAX}
        self.has_credentials = has_credentials

    def body_limit(self, method: str, path: str) -> int:
        """The largest body the route at `path` accepts."""
        return self.routes.get((method.upper(), path), FORM_BODY_MAX)

    def limit_for(self, method: str, path: str, authorization: str, cookies: str
                  ) -> tuple[int, Refusal]:
        """The largest body this request may send, and what it gets for sending more."""
        if not self.has_credentials(authorization, cookies):
            return min(ANONYMOUS_BODY_MAX, self.body_limit(method, path)), Refusal(
                401, "Unauthorized",
                "a JupyterHub token is required (Authorization: token ...)")
        limit = self.body_limit(method, path)
        return limit, Refusal(413, "Request Entity Too Large",
                              f"this address takes at most {limit} bytes")
