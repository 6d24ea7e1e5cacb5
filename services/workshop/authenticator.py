"""A JupyterHub Authenticator backed by users.txt.

Every login reads the file's current state (parsed again only when it changed), so a new
participant can log in, a removed one cannot and a changed password applies the moment
the instructor saves the file; no restart, no PAM, no /etc/shadow.
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from .roster import RosterFile, RosterUnavailable


class UsersFileAuthenticator(Authenticator):
    """Checks usernames and passwords against users.txt (plain or bcrypt passwords)."""

    users_file = Unicode(
        "/srv/hub/etc/jupyterhub/users.txt",
        help="Path of users.txt: one 'username:password' per line.",
    ).tag(config=True)

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # Who may log in is decided by users.txt alone: authenticate() only ever succeeds
        # for a listed user, so JupyterHub's own allow-list stays out of the way.
        return True

    def _roster_file(self) -> RosterFile:
        # One cached reader per path; the path may change through config reload.
        cached = getattr(self, "_cached_roster_file", None)
        if cached is None or str(cached.path) != self.users_file:
            cached = self._cached_roster_file = RosterFile(self.users_file)
        return cached

    async def authenticate(self, handler, data):  # type: ignore[override]
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        try:
            roster = self._roster_file().load()
        except RosterUnavailable as e:
            self.log.error("login refused for %s: %s", name, e)
            return None
        account = roster.accounts.get(name)
        if account is None or not account.check_password(password):
            self.log.warning("failed login for %r", name)
            return None
        return {"name": account.name}
