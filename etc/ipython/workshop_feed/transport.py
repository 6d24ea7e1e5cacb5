"""HTTP to the dashboard with the participant's own token: the standard library only (the
kernel's environment is the participant's, and may lack or replace anything else)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

# The dashboard is on the same host (127.0.0.1); proxies from the participant's
# environment are never used for it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    status: int  # 0: no answer at all (refused, timed out)
    body: Any = None  # parsed JSON, when there was some
    retry_after: float = 0.0
    reason: str = ""


def request(method: str, url: str, token: str, body: bytes | None = None, *,
            timeout: float) -> Answer:
    headers = {"Authorization": f"token {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return Answer(response.status, _json(response.read()))
    except urllib.error.HTTPError as e:
        try:
            data = _json(e.read())
        except OSError:
            data = None
        retry = e.headers.get("Retry-After", "") if e.headers else ""
        message = data.get("message", "") if isinstance(data, dict) else ""
        return Answer(e.code, data, float(retry) if retry.isdigit() else 0.0,
                      str(message)[:200])
    except Exception as e:  # refused, timed out, reset: the dashboard is away
        return Answer(0, None, 0.0, f"{type(e).__name__}: {e}"[:200])


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None
