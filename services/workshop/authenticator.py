"""A JupyterHub Authenticator backed by users.txt.

Every login reads the file's current state (parsed again only when it changed), so a new
participant can log in, a removed one cannot and a changed password applies the moment
the instructor saves the file; no restart, no PAM, no /etc/shadow.

Two things keep a login from hurting the class:
- the list in force is the one users-sync keeps in force (rosterguard): while users.txt is
  empty, unreadable or drops half the class at once, logins use the last good list;
- passwords are checked off the event loop, in a bounded pool, in the same time for every
  username (passwordcheck), so a flood of attempts neither freezes the hub nor tells
  which usernames exist.
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Integer, Unicode, default

from .passwordcheck import Busy, PasswordChecker, usual_cost
from .roster import Roster, RosterFile
from .rosterguard import GuardedRoster
from .syncstatus import last_good_path, status_path


class UsersFileAuthenticator(Authenticator):
    """Checks usernames and passwords against users.txt (plain or bcrypt passwords)."""

    users_file = Unicode(
        "/srv/hub/etc/jupyterhub/users.txt",
        help="Path of users.txt: one 'username:password' per line.",
    ).tag(config=True)

    users_sync_status = Unicode(
        help="""users-sync's status file. The last good users.txt is kept next to it, and
        logins use that one while users.txt is held back (empty, unreadable, or removing
        more than half of the people at once).""",
    ).tag(config=True)

    password_check_threads = Integer(
        2, help="Threads checking passwords (bcrypt), off the hub's event loop.",
    ).tag(config=True)

    max_waiting_checks = Integer(
        16,
        help="""Password checks that may wait for a thread; a login attempt beyond that is
        answered 429 ("try again in a few seconds") at once and logged, so a flood cannot
        queue up minutes of work. The wait is about this many times a check's time (0.25 s
        at cost 12, twice that on a busy 2-core node) over the threads: 2 to 4 seconds.""",
    ).tag(config=True)

    @default("users_sync_status")
    def _users_sync_status_default(self) -> str:
        return str(status_path())

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # Who may log in is decided by users.txt alone: authenticate() only ever succeeds
        # for a listed user, so JupyterHub's own allow-list stays out of the way.
        return True

    def _roster_file(self) -> RosterFile:
        return self._guarded().users

    def _guarded(self) -> GuardedRoster:
        # One cached reader per path; the path may change through config reload.
        cached: GuardedRoster | None = getattr(self, "_cached_guard", None)
        last_good = last_good_path(self.users_sync_status)
        if (cached is None or str(cached.users.path) != self.users_file
                or cached.last_good is None or cached.last_good.path != last_good):
            cached = self._cached_guard = GuardedRoster(RosterFile(self.users_file), last_good)
        return cached

    def _checker(self) -> PasswordChecker:
        checker: PasswordChecker | None = getattr(self, "_cached_checker", None)
        if checker is None:
            checker = self._cached_checker = PasswordChecker(self.password_check_threads,
                                                             self.max_waiting_checks)
        return checker

    def _cost(self, roster: Roster) -> int | None:
        cached = getattr(self, "_cached_cost", None)
        if cached is None or cached[0] is not roster:
            cached = self._cached_cost = (roster, usual_cost(roster.accounts.values()))
        return cached[1]

    def current_roster(self) -> Roster | None:
        """The list logins are checked against (the last good one while users.txt is held)."""
        verdict = self._guarded().current()
        if verdict.held != getattr(self, "_held_logged", None):
            self._held_logged = verdict.held
            if verdict.held:
                self.log.error("logins use the last good list: %s", verdict.held)
            else:
                self.log.info("users.txt is in force again")
        return verdict.roster

    async def authenticate(self, handler, data):  # type: ignore[override]
        if not isinstance(data.get("username"), str):
            # JupyterHub's login handler answers a refused login with the form again,
            # filled from data["username"]: a post without the field was its 500
            # (KeyError). Say what is wrong instead; it tells nothing about anybody.
            raise web.HTTPError(400, reason="The login form needs a username")
        name = self.normalize_username(data["username"])
        password = data.get("password", "")
        roster = self.current_roster()
        if roster is None:
            self.log.error("login refused for %r: no list of people to check against", name)
            return None
        account = roster.accounts.get(name)
        try:
            ok = await self._checker().check(account, password, self._cost(roster))
        except Busy as e:
            self.log.warning("login of %r refused at once: %s (a flood of attempts?)", name, e)
            # Not "invalid password": a real participant should simply try again. Whether
            # the pool is full says nothing about the name, so this reveals nothing.
            raise web.HTTPError(429, reason="Too many login attempts right now: please "
                                "try again in a few seconds") from None
        if not ok or account is None:
            self.log.warning("failed login for %r", name)
            return None
        return {"name": account.name}
