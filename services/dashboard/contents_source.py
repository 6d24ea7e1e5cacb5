"""Saved notebooks read through each participant's own Jupyter server, not from the disk.

For a dashboard that cannot see the homes (participants' servers on other machines, or
homes hidden from it): `ContentsSource` asks the participant's server

    GET <server>/api/contents/<path>?type=file&format=text&content=1

`type=file&format=text` hands back the saved .ipynb text unchanged, exactly what
`FileSystemSource` reads from disk. `<server>` comes from `server_url(name)` (by default
``<proxy_url>/user/<name>/``), which may also give headers to send (a Host header when
servers have their own subdomains).

No credential valid for anyone else reaches a participant's server: each server is sent
a token of its own participant, limited to that server (participant_tokens.py). The
dashboard's own token, which opens every server, only ever goes to the hub's API.

A stopped server is not a deleted notebook. Only a running server that answers "no such
file" makes a notebook missing (the worker then drops its view); a server that is stopped,
starting or not answering raises `ServerUnavailable` (a `SourceUnavailable`: the last
render stays), and `mtime_ns` reports the last time it knew (0 if none), so the worker's
periodic catch-up never forgets what it rendered for someone whose server the idle culler stopped.

`choose_source(settings)` picks this source or `FileSystemSource` (`DASHBOARD_SOURCE`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from workshop.hubapi import HubAPI, HubAPIError

from .limits import NOTEBOOK_MAX_BYTES
from .participant_tokens import ParticipantTokens
from .paths import safe_path, safe_user
from .settings import Settings
from .sources import (
    FileSystemSource,
    NotebookMissing,
    NotebookSource,
    SourceError,
    SourceNotebook,
    SourceUnavailable,
)

log = logging.getLogger("dashboard.contents")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOT_RUNNING = {424, 502, 503, 504}  # the hub's "server not running", the proxy's errors
REFUSED = {401, 403}  # the server does not take the token (expired, revoked): renew once

# Where a participant's server answers: its base URL (ending in "/"), or the URL and
# headers to send with every request to it (e.g. a Host header).
ServerAddress = str | tuple[str, Mapping[str, str]]
ServerURL = Callable[[str], ServerAddress]


class ServerUnavailable(SourceUnavailable):
    """The participant's server is stopped, starting or not answering: ask again later."""


def mtime_ns(last_modified: str) -> int:
    """Nanoseconds since the epoch of a contents model's `last_modified` (microseconds)."""
    when = datetime.fromisoformat(last_modified)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


@dataclass
class _Walk:
    """One participant's notebooks as found by the last `list()`."""

    at: float
    complete: bool  # every folder was listed: what is not in `notebooks` is gone
    notebooks: dict[str, int] = field(default_factory=dict)


class ContentsSource:
    """A `NotebookSource` over the Jupyter contents API of participants' servers."""

    def __init__(self, hub: HubAPI, proxy_url: str | None = None, *,
                 server_url: ServerURL | None = None,
                 tokens: ParticipantTokens | None = None,
                 group: str = "participants", timeout: float = 10.0,
                 max_bytes: int = NOTEBOOK_MAX_BYTES, max_depth: int = 12,
                 max_folders: int = 2000, walk_max_age: float = 60.0,
                 running_max_age: float = 5.0) -> None:
        if server_url is None:
            if proxy_url is None:
                raise ValueError("ContentsSource needs proxy_url or server_url")
            proxy = proxy_url.rstrip("/")
            server_url = lambda name: f"{proxy}/user/{quote(name)}/"  # noqa: E731
        self.hub = hub  # the dashboard's own token: for the hub's API only
        self.server_url = server_url
        self.tokens = tokens or ParticipantTokens(hub)
        self.group = group
        self.timeout = timeout
        self.max_bytes, self.max_depth, self.max_folders = max_bytes, max_depth, max_folders
        self.walk_max_age, self.running_max_age = walk_max_age, running_max_age
        self.http = requests.Session()  # no credential of its own: each request brings one
        self.http.trust_env = False  # loopback to the proxy: never through an HTTP proxy
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], int] = {}  # last mtime seen of each notebook
        self._walks: dict[str, _Walk] = {}
        self._running: tuple[float, set[str]] | None = None

    # -- NotebookSource ---------------------------------------------------------------
    def read(self, user: str, path: str) -> SourceNotebook:
        model = self._get(user, safe_path(path), type="file", format="text", content="1")
        text = model.get("content")
        if not isinstance(text, str):
            raise SourceError("the server did not send the notebook's text")
        mtime = self._remember(user, path, model)
        return SourceNotebook(content=text, mtime_ns=mtime)

    def mtime_ns(self, user: str, path: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            walk = self._walks.get(user)
            known = self._known.get((user, path), 0)
        if walk and walk.complete and now - walk.at <= self.walk_max_age:
            return walk.notebooks.get(path)
        running = self._running_participants()
        if running is not None and user not in running:
            return known  # stopped: it still exists as far as we know
        try:
            model = self._get(user, safe_path(path), content="0")
        except NotebookMissing:
            return None
        except SourceError:
            return known
        return self._remember(user, path, model)

    def list(self) -> Iterator[tuple[str, str, int]]:
        running = self._running_participants(fresh=True)
        if running is None:
            return  # the hub does not answer: nothing is listed, nothing forgotten
        for user in sorted(running):
            walk = self._walk(user)
            with self._lock:
                self._walks[user] = walk
                for path, mtime in walk.notebooks.items():
                    self._known[(user, path)] = mtime
            for path in sorted(walk.notebooks):
                yield user, path, walk.notebooks[path]

    # -- the hub ----------------------------------------------------------------------
    def _running_participants(self, fresh: bool = False) -> set[str] | None:
        """Participants whose server is ready now; None when the hub cannot tell."""
        with self._lock:
            cached = self._running
        if cached and not fresh and time.monotonic() - cached[0] <= self.running_max_age:
            return cached[1]
        try:
            members = self.hub.group_members(self.group)
            ready = {u["name"] for u in self.hub.paginate("/users?state=ready")
                     if ((u.get("servers") or {}).get("") or {}).get("ready")}
        except (HubAPIError, OSError, KeyError) as e:
            log.warning("cannot list running servers: %s", e)
            return None
        with self._lock:
            self._running = (time.monotonic(), members & ready)
        return members & ready

    def _server_ready(self, user: str) -> bool:
        try:
            model = self.hub.request("GET", f"/users/{quote(user)}")
        except (HubAPIError, OSError):
            return False
        return bool(((model or {}).get("servers") or {}).get("", {}).get("ready"))

    # -- the participant's server -----------------------------------------------------
    def _address(self, user: str) -> tuple[str, dict[str, str]]:
        """The base URL of `user`'s server and the headers it needs, checked."""
        address = self.server_url(safe_user(user))
        url, headers = (address, {}) if isinstance(address, str) else address
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SourceError(f"no URL for {user}'s server")
        extra = {str(k): str(v) for k, v in dict(headers).items()}
        if any(k.lower() in ("authorization", "cookie") for k in extra):
            raise SourceError("server_url may not set credentials: each server gets its own")
        return url if url.endswith("/") else url + "/", extra

    def _get(self, user: str, path: str, **params: str) -> dict[str, Any]:
        """The contents model of `path` (checked by the caller; "" is the home itself);
        NotebookMissing only when the running server says there is no such file."""
        base, headers = self._address(user)
        url = f"{base}api/contents/{quote(path)}"
        token = self.tokens.get(user)
        r = self._request(user, url, params, headers, token)
        if r.status_code in REFUSED:  # expired or revoked early: a new token, once
            r.close()
            r = self._request(user, url, params, headers, self.tokens.renew(user, token))
        return self._answer(user, path, r)

    def _request(self, user: str, url: str, params: dict[str, str],
                 headers: dict[str, str], token: str) -> requests.Response:
        try:
            return self.http.get(url, params=params, timeout=self.timeout,
                                 allow_redirects=False, stream=True,
                                 headers={**headers, "Authorization": f"token {token}"})
        except requests.RequestException as e:
            raise ServerUnavailable(f"{user}'s server does not answer ({e})") from None

    def _answer(self, user: str, path: str, r: requests.Response) -> dict[str, Any]:
        with r:
            if r.status_code == 200:
                return self._json(r)
            if r.status_code in NOT_RUNNING or 300 <= r.status_code < 400:
                raise ServerUnavailable(f"{user}'s server is not running")
            if r.status_code == 404:
                # The server's own "no such file", or the hub's "no such user/server"?
                if self._server_ready(user):
                    raise NotebookMissing(f"{user}/{path} does not exist")
                raise ServerUnavailable(f"{user}'s server is not running")
            if r.status_code in REFUSED:
                raise SourceError(f"the dashboard may not read {user}'s server "
                                  f"({r.status_code})")
            raise SourceError(f"{user}'s server answered {r.status_code}")

    def _json(self, r: requests.Response) -> dict[str, Any]:
        # JSON escapes make the model larger than the file: allow for that, then stop
        # reading, so one enormous notebook cannot fill the dashboard's memory.
        limit = 2 * self.max_bytes + 64 * 1024
        body = r.raw.read(limit + 1, decode_content=True)
        if len(body) > limit:
            raise SourceError(f"too large to show (over {self.max_bytes // 2**20} MiB)")
        try:
            model = json.loads(body)
        except ValueError:
            raise SourceError("the server's answer is not JSON") from None
        if not isinstance(model, dict):
            raise SourceError("the server's answer is not a contents model")
        if int(model.get("size") or 0) > self.max_bytes:
            raise SourceError(f"too large to show ({int(model['size']) // 2**20} MiB)")
        return model

    def _remember(self, user: str, path: str, model: dict[str, Any]) -> int:
        try:
            mtime = mtime_ns(model["last_modified"])
        except (KeyError, TypeError, ValueError):
            raise SourceError("the server's answer has no modification time") from None
        with self._lock:
            self._known[(user, path)] = mtime
        return mtime

    def _walk(self, user: str) -> _Walk:
        """Every notebook in `user`'s server, folder by folder (hidden ones skipped)."""
        walk = _Walk(at=time.monotonic(), complete=True)
        folders: list[tuple[str, int]] = [("", 0)]
        listed = 0
        while folders:
            folder, depth = folders.pop()
            if listed >= self.max_folders:
                walk.complete = False
                log.warning("%s has more than %d folders; listed only those",
                            user, self.max_folders)
                break
            listed += 1
            try:
                model = self._get(user, folder, type="directory", content="1")
            except ServerUnavailable:
                walk.complete = False
                break  # the server went away: keep what we know
            except SourceError as e:  # one unreadable folder: the rest still counts
                log.info("cannot list %s's %r: %s", user, folder or "/", e)
                walk.complete = False
                continue
            for item in model.get("content") or []:
                name, kind = item.get("name", ""), item.get("type")
                if not name or name.startswith("."):
                    continue
                if kind == "directory":
                    if depth + 1 < self.max_depth and _plain_folder(item.get("path")):
                        folders.append((item["path"], depth + 1))
                elif kind == "notebook" or name.endswith(".ipynb"):
                    try:  # a name the renderer refuses is not listed at all
                        path = safe_path(item["path"])
                        walk.notebooks[path] = mtime_ns(item["last_modified"])
                    except (KeyError, TypeError, ValueError):
                        continue
        return walk


def _plain_folder(path: Any) -> bool:
    """A folder path as the contents API gives it: relative, no `..`, nothing hidden."""
    return (isinstance(path, str) and "\\" not in path and "\x00" not in path
            and all(p and p not in (".", "..") and not p.startswith(".")
                    for p in path.split("/")))


def choose_source(settings: Settings, server_url: ServerURL | None = None) -> NotebookSource:
    """The homes on disk (`files`), participants' servers (`contents`), or `auto`: the
    disk when the home root is there (or when not running as a hub service). `server_url`
    says where a participant's server answers (default: behind the proxy)."""
    kind = settings.source
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if kind == "auto":
        kind = "files" if settings.home_root.is_dir() or not token else "contents"
    if kind == "files":
        return FileSystemSource(settings.home_root)
    if kind == "contents":
        if not token:
            raise RuntimeError("DASHBOARD_SOURCE=contents needs the hub's token: "
                               "run the dashboard as a hub service")
        log.info("reading notebooks through participants' servers at %s", settings.proxy_url)
        return ContentsSource(HubAPI(token=token), settings.proxy_url, server_url=server_url)
    raise ValueError(f"DASHBOARD_SOURCE={settings.source!r}: use files, contents or auto")
