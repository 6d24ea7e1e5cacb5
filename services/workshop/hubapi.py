"""A small synchronous client for the JupyterHub REST API, as used by our services.

Services started by the hub get `JUPYTERHUB_API_URL` and `JUPYTERHUB_API_TOKEN` in their
environment; the token carries exactly the scopes of the service's role.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import requests

PAGINATION = "application/jupyterhub-pagination+json"


class HubAPIError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status


class HubAPI:
    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout: float = 10.0) -> None:
        self.url = (url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        token = token or os.environ["JUPYTERHUB_API_TOKEN"]
        self.session.headers["Authorization"] = f"token {token}"

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (),
                **kwargs: Any) -> Any:
        """JSON of the answer (None when empty); raises HubAPIError unless 2xx or in `ok`."""
        kwargs.setdefault("timeout", self.timeout)
        r = self.session.request(method, self.url + path, **kwargs)
        if r.status_code >= 400 and r.status_code not in ok:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text
            raise HubAPIError(method, path, r.status_code, message)
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else None

    def paginate(self, path: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.request("GET", path, params={"offset": offset, "limit": 200},
                                headers={"Accept": PAGINATION})
            yield from page["items"]
            following = page["_pagination"].get("next")
            if not following:
                return
            offset = following["offset"]

    def users(self) -> dict[str, dict[str, Any]]:
        return {u["name"]: u for u in self.paginate("/users")}

    def group_members(self, group: str) -> set[str]:
        return set(self.request("GET", f"/groups/{group}")["users"])
