"""Who is asking, and may they? JupyterHub identities and scopes, in Flask.

Two ways in, both checked by the hub:
- a token in the `Authorization` header: how participants' servers post save events
  (the server's own JUPYTERHUB_API_TOKEN) and how scripts read the API;
- a browser session: the hub's OAuth login (`HubOAuth`, with PKCE) leaves the user's
  OAuth token in a signed, HttpOnly cookie scoped to the dashboard's prefix.

Instructors are whoever holds the custom scope granted to the `instructors` group's role
in jupyterhub_config.py; nothing here knows about users.txt.

Everything here is called from several waitress threads at once: tokens are checked by
`tokens.HubTokenCheck` (thread-safe), and the OAuth steps that still go through
JupyterHub's `HubOAuth` (not thread-safe) take turns.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Request, Response, abort, redirect, request
from itsdangerous import BadSignature, URLSafeSerializer
from jupyterhub.services.auth import HubOAuth, check_scopes
from tornado.web import HTTPError
from werkzeug.http import parse_cookie

from .tokens import HubTokenCheck, HubUnavailable

UserModel = dict[str, Any]
# JupyterHub's tokens are 32 hex characters, its OAuth tokens a little longer: anything
# that is not a short printable word is not a token and is never sent on to the hub.
MAX_TOKEN_LENGTH = 256
TOKEN_HEADER = re.compile(rf"^(?:token|bearer)\s+([\x21-\x7e]{{1,{MAX_TOKEN_LENGTH}}})$",
                          re.IGNORECASE)


def is_https(req: Request) -> bool:
    # nginx -> configurable-http-proxy -> here: the first X-Forwarded-Proto is the browser's.
    forwarded = req.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    return (forwarded or req.scheme) == "https"


class AuthGate:
    def __init__(self, user_for_token: Callable[[str], UserModel | None], *,
                 access_scopes: set[str], instructor_scope: str, cookie_name: str,
                 cookie_path: str, secret: bytes, login: HubLogin | None = None) -> None:
        self.user_for_token = user_for_token
        self.access_scopes = access_scopes
        self.instructor_scope = instructor_scope
        self.cookie_name = cookie_name
        self.cookie_path = cookie_path
        self.serializer = URLSafeSerializer(secret, salt="dashboard-token")
        self.secret = secret
        self.login = login

    # -- identity ---------------------------------------------------------------------
    def _token(self) -> str | None:
        m = TOKEN_HEADER.match(request.headers.get("Authorization", ""))
        if m:
            return m.group(1)
        signed = request.cookies.get(self.cookie_name)
        if signed:
            try:
                return self.serializer.loads(signed)
            except BadSignature:
                return None
        return None

    def has_credentials(self, authorization: str, cookies: str) -> bool:
        """Does a request with these headers carry a token, or a session cookie we signed?

        Cheap (no hub call): the server asks before it reads a request's body. Whether
        the token is valid is the route's question, asked after.
        """
        if TOKEN_HEADER.match(authorization):
            return True
        signed = parse_cookie(cookies).get(self.cookie_name)
        if not signed:
            return False
        try:
            self.serializer.loads(signed)
        except BadSignature:
            return False
        return True

    def current_user(self) -> UserModel | None:
        """The hub's model of the requester, or None when not (validly) identified."""
        token = self._token()
        if not token:
            return None
        try:
            user = self.user_for_token(token)
        except HubUnavailable as e:
            abort(503, f"cannot check the token with JupyterHub right now ({e}); "
                       "try again in a moment")
        if not user or not check_scopes(self.access_scopes, set(user.get("scopes", []))):
            return None
        return user

    def is_instructor(self, user: UserModel) -> bool:
        return bool(check_scopes({self.instructor_scope}, set(user.get("scopes", []))))

    # -- guards for routes ------------------------------------------------------------
    def api_user(self) -> UserModel:
        user = self.current_user()
        if user is None:
            abort(401, "a JupyterHub token is required (Authorization: token ...)")
        return user

    def api_instructor(self) -> UserModel:
        user = self.api_user()
        if not self.is_instructor(user):
            abort(403, f"{user['name']} is not an instructor")
        return user

    def page_instructor(self) -> UserModel | Response:
        """The instructor for a page, or the response to send instead (login / 403)."""
        user = self.current_user()
        if user is None:
            if self.login is None:
                abort(401)
            return self.login.redirect_to_login(request.full_path.rstrip("?"))
        if not self.is_instructor(user):
            abort(403, f"{user['name']} is not an instructor: this page is for instructors")
        return user

    # -- forms ------------------------------------------------------------------------------
    def csrf_token(self) -> str:
        """A form token bound to this browser's session cookie (empty without one)."""
        session = request.cookies.get(self.cookie_name, "")
        return hmac.new(self.secret, f"csrf:{session}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self) -> None:
        """Refuse a cookie-authenticated form post that did not come from our own page.

        A token in the Authorization header cannot be sent by another site, so API calls
        with one need no form token.
        """
        if TOKEN_HEADER.match(request.headers.get("Authorization", "")):
            return
        given = request.headers.get("X-CSRF-Token") or request.form.get("_csrf", "")
        if not request.cookies.get(self.cookie_name) or not hmac.compare_digest(
                given, self.csrf_token()):
            abort(403, "the form expired or came from another site: reload the page")

    def remember(self, response: Response, token: str) -> None:
        response.set_cookie(self.cookie_name, self.serializer.dumps(token),
                            path=self.cookie_path, httponly=True, samesite="Lax",
                            secure=is_https(request))


class HubLogin:
    """The OAuth dance with the hub (authorization code + PKCE), for browsers."""

    def __init__(self, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth
        # HubOAuth keeps its OAuth states in a dict it purges as it goes, and runs its
        # token exchange on a lazily created event loop: one thread at a time.
        self._turn = threading.Lock()

    def redirect_to_login(self, next_url: str) -> Response:
        with self._turn:
            verifier, challenge, method = self.hub_auth.generate_pkce_code_challenge()
            state = self.hub_auth.generate_state(next_url, code_verifier=verifier)
        query = urlencode({"state": state, "code_challenge": challenge,
                           "code_challenge_method": method})
        response = redirect(f"{self.hub_auth.login_url}&{query}")
        response.set_cookie(self.hub_auth.state_cookie_name, state, max_age=600,
                            path=self.hub_auth.cookie_path, httponly=True, samesite="Lax",
                            secure=is_https(request))
        return response

    def callback(self, gate: AuthGate) -> Response:
        code = request.args.get("code")
        state = request.args.get("state", "")
        if not code or not state or state != request.cookies.get(
                self.hub_auth.state_cookie_name):
            abort(403, "OAuth state does not match: start again from the dashboard's address")
        with self._turn:
            verifier = self.hub_auth.get_code_verifier(state)
            next_url = self.hub_auth.get_next_url(state)
            if verifier is None:  # begun before the dashboard restarted, or expired
                abort(403, "this login has expired: start again from the dashboard's address")
            try:
                token = self.hub_auth.token_for_code(code, code_verifier=verifier)
            except HTTPError as e:
                # HubOAuth reports a refused code as its own 500: say what it means.
                abort(502 if e.status_code == 502 else 403,
                      "JupyterHub did not accept this login: start again from the "
                      "dashboard's address")
            finally:
                self.hub_auth.clear_oauth_state(state)
        response = redirect(next_url)
        response.delete_cookie(self.hub_auth.state_cookie_name, path=self.hub_auth.cookie_path)
        gate.remember(response, token)
        return response


def hub_gate(prefix: str, instructor_scope: str, secret: bytes) -> AuthGate:
    """The gate of the real service, talking to the hub that started it."""
    hub_auth = HubOAuth()  # for the OAuth login only; tokens are checked by HubTokenCheck
    return AuthGate(
        HubTokenCheck(hub_auth.api_url),
        access_scopes=set(hub_auth.access_scopes),
        instructor_scope=instructor_scope,
        cookie_name=hub_auth.cookie_name,
        cookie_path=prefix,
        secret=secret,
        login=HubLogin(hub_auth),
    )
