"""Requests sent exactly as written: the request line's bytes, headers and body as given.

`requests` (urllib3) removes `..` segments and re-quotes paths before sending, so a
traversal would never leave this machine as written. Here the path goes out byte for
byte, through the proxy's public port with the Host of the address it is meant for.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")

    def message(self) -> str:
        """The error's readable message: JSON's `message`, else the start of the page."""
        if self.is_json:
            return str(self.json().get("message", ""))
        return self.body[:2000].decode("utf-8", "replace")


def send(base_url: str, method: str, target: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> Answer:
    """`method` `target` (sent as is, must start with "/") to the origin of `base_url`."""
    origin = urlsplit(base_url)
    conn = http.client.HTTPConnection("127.0.0.1", origin.port or 80, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", origin.netloc)
        sent = {k.lower() for k in (headers or {})}
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None and "content-length" not in sent:
            conn.putheader("Content-Length", str(len(body)))
        # The answer may come before the whole body is sent (a refusal judged from the
        # headers), and the proxy then closes its side: read the answer all the same, as
        # urllib3 and browsers do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                      data)
    finally:
        conn.close()
