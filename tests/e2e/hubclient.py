"""A participant's browser, reduced to HTTP: real logins, spawns, contents and kernels.

Everything goes through the stack's public address exactly as a browser would: the
login form with its _xsrf token on the hub's origin, the OAuth redirects into the
participant's server on its own subdomain, the Jupyter REST API with the server's _xsrf
cookie, kernels over websockets. Which stack: the one last started (`use`), unless a
session is given its own `Addresses`.

Browsers resolve every *.localhost name to this machine (Chromium does, RFC 6761 asks
for it); Python's resolver only knows "localhost" itself. Importing this module teaches
this process the same, so tests and benchmarks reach participants' subdomains.

Test stacks are at `lab.localhost`, not at `localhost` itself: the hub's session cookie
is set for the hub's domain (so its subdomains share it), and Python's cookie jar files
a dotless host's cookies under "localhost.local", where a domain cookie for ".localhost"
never matches again (browsers have no such quirk: the README's http://localhost works).
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
import websocket

from workshop.addresses import Addresses

XSRF_INPUT = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


_getaddrinfo = socket.getaddrinfo


def _localhost_names(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _localhost_names

_current = Addresses(port=980, public_url="http://lab.localhost:980")


def use(addresses: Addresses) -> None:
    """Sessions made from now on talk to the stack at `addresses`."""
    global _current
    _current = addresses


def current() -> Addresses:
    return _current


def hub_url(path: str) -> str:
    return _current.hub(path)


def dashboard_url(path: str = "") -> str:
    return _current.service("dashboard", path)


def within(seconds: float, condition: Callable[[], object], what: str = "condition") -> float:
    """Seconds until `condition()` held, polling; fails the test when it did not in time."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds}s")


class LoginFailed(AssertionError):
    pass


class HubSession:
    def __init__(self, name: str, addresses: Addresses | None = None,
                 verify: str | bool = True) -> None:
        self.name = name
        self.addresses = addresses or _current
        self.base = self.addresses.public_url
        self.verify = verify  # a CA bundle when the hub is behind nginx with a test CA
        self.http = requests.Session()
        self.http.verify = verify
        # requests prefers REQUESTS_CA_BUNDLE from the environment over Session.verify.
        self.http.trust_env = verify is True

    # -- hub -------------------------------------------------------------------------
    def login(self, password: str) -> None:
        """Log in through the real login form; raises LoginFailed when refused."""
        form = self.http.get(f"{self.base}/hub/login", params={"next": "/hub/home"},
                             timeout=30)
        form.raise_for_status()
        m = XSRF_INPUT.search(form.text)
        assert m, "login form without _xsrf field"
        r = self.http.post(
            f"{self.base}/hub/login", params={"next": "/hub/home"},
            data={"username": self.name, "password": password, "_xsrf": m.group(1)},
            allow_redirects=False, timeout=30,
        )
        if r.status_code != 302 or "/hub/login" in r.headers.get("Location", ""):
            raise LoginFailed(f"login of {self.name} refused: {r.status_code}")

    def can_login(self, password: str) -> bool:
        fresh = HubSession(self.name, self.addresses, self.verify)
        try:
            fresh.login(password)
        except LoginFailed:
            return False
        return True

    def _hub_xsrf(self) -> dict[str, str]:
        # The _xsrf cookie changes at login; API calls with the session cookie send it back.
        return {"X-XSRFToken": self._cookie("_xsrf", self.addresses.hostname, "/hub/")}

    def _cookie(self, name: str, host: str, path: str) -> str:
        # http.cookiejar files a dotless host's cookies under "<host>.local".
        for cookie in self.http.cookies:
            if (cookie.name == name and cookie.path == path
                    and cookie.domain.lstrip(".") in (host, f"{host}.local")):
                return cookie.value or ""
        return ""

    def hub_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/hub/api{path}",
                                 headers=self._hub_xsrf(), timeout=60, **kwargs)

    def user_model(self) -> dict[str, Any]:
        r = self.hub_api("GET", f"/users/{self.name}")
        r.raise_for_status()
        return r.json()

    def spawn(self, timeout: float = 180) -> None:
        """Start the default server and wait until the hub says it is ready."""
        r = self.hub_api("POST", f"/users/{self.name}/server")
        assert r.status_code in (201, 202, 400), r.text  # 400: already running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.user_model().get("servers", {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise AssertionError(f"server of {self.name} not ready after {timeout}s")

    def new_token(self, note: str = "e2e") -> str:
        r = self.hub_api("POST", f"/users/{self.name}/tokens",
                         json={"note": note, "expires_in": 3600})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    # -- the participant's own server ---------------------------------------------------
    @property
    def server_url(self) -> str:
        return self.addresses.user(self.name).rstrip("/")

    def open_lab(self) -> requests.Response:
        """What a browser does first: /user/<name>/lab, following the OAuth redirects."""
        r = self.http.get(f"{self.server_url}/lab", timeout=60)
        r.raise_for_status()
        return r

    def server_api(self, method: str, path: str, timeout: float = 60,
                   **kwargs: Any) -> requests.Response:
        xsrf = self._cookie("_xsrf", self.addresses.user_host(self.name), f"/user/{self.name}/")
        return self.http.request(method, f"{self.server_url}/api{path}",
                                 headers={"X-XSRFToken": xsrf}, timeout=timeout, **kwargs)

    def save_notebook(self, path: str, cells: list[dict[str, Any]],
                      timeout: float = 60) -> requests.Response:
        notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
        return self.server_api("PUT", f"/contents/{path}", timeout=timeout,
                               json={"type": "notebook", "format": "json",
                                     "content": notebook})

    def run(self, code: str) -> str:
        """Run `code` in a kernel of its own (started and shut again): its stdout.
        Fails the test when the code raised."""
        kernel = self.start_kernel()
        try:
            out = kernel.execute(code)
        finally:
            kernel.close()
        assert not out["error"], out
        return out["stdout"]

    def start_kernel(self) -> Kernel:
        r = self.server_api("POST", "/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        return Kernel(self, r.json()["id"])


def logged_in(name: str, password: str, addresses: Addresses | None = None) -> HubSession:
    """Logged in through the hub's form, as a participant's browser would."""
    session = HubSession(name, addresses)
    session.login(password)
    return session


def started(name: str, password: str, addresses: Addresses | None = None,
            timeout: float = 180) -> HubSession:
    """Logged in, server started and JupyterLab opened once (OAuth done), as a
    participant's browser would; says how long the start took."""
    session = logged_in(name, password, addresses)
    begun = time.monotonic()
    session.spawn(timeout=timeout)
    print(f"\n{name}'s server ready in {time.monotonic() - begun:.1f}s")
    session.open_lab()
    return session


class Kernel:
    """One kernel of a participant, driven over its websocket like JupyterLab does."""

    def __init__(self, session: HubSession, kernel_id: str) -> None:
        self.session = session
        self.id = kernel_id
        url = session.server_url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        host = session.addresses.user_host(session.name)
        cookies = "; ".join(f"{c.name}={c.value}" for c in session.http.cookies
                            if c.domain.lstrip(".") in (host, f"{host}.local"))
        sslopt = {"ca_certs": session.verify} if isinstance(session.verify, str) else {}
        self.ws = websocket.create_connection(url, cookie=cookies, timeout=60, sslopt=sslopt)

    def send_execute(self, code: str, store_history: bool = True) -> str:
        """Send an execute_request as JupyterLab does; its msg_id (replies carry it)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "e2e",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": store_history,
                        "user_expressions": {}, "allow_stdin": False},
        }))
        return msg_id

    def execute(self, code: str, timeout: float = 60) -> dict[str, str]:
        """Run `code`; returns {'stdout', 'stderr', 'result', 'error'} as text."""
        msg_id = self.send_execute(code)
        out = {"stdout": "", "stderr": "", "result": "", "error": ""}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "execute_result":
                out["result"] += content["data"].get("text/plain", "")
            elif kind == "error":
                out["error"] += f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                return out
        raise AssertionError(f"kernel {self.id} did not finish {code!r}")

    def close(self) -> None:
        self.ws.close()
