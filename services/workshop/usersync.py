"""The users-sync service: keeps the hub in step with users.txt while the hub runs.

Started and supervised by JupyterHub as a managed service (running as root in the
container, with a role limited to users, servers and groups). It watches users.txt and,
within about a second of a saved edit:

- creates the system account, home and hub user of every new participant;
- puts instructors in the `instructors` group and everyone else in `participants`
  (roles granted to those groups decide what each may do);
- stops the server of, deletes from the hub and ends every remaining process of every user
  no longer listed (their home stays on disk: nothing is lost, and re-adding them brings
  it back);
- reports every skipped line with its line number.

Nobody else's server, kernel or session is touched. A users.txt that cannot be read, lists
nobody, or removes more than half of the class at once is not applied (rosterguard): the
last good list stays in force until the file is fixed. One account that cannot be made (a
name the system uses, a failing command) is reported and skipped; everyone else is synced.
What happened is logged and written to a status file the dashboard shows (syncstatus).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .accounts import SystemDB, ensure_system_user, participant_uid
from .hubapi import HubAPI
from .processes import kill_user_processes
from .roster import Roster, RosterFile
from .rosterguard import GuardedRoster, Verdict
from .syncstatus import last_good_path, status_path, write_status

log = logging.getLogger("users-sync")

INSTRUCTORS = "instructors"
PARTICIPANTS = "participants"
GROUPS = (INSTRUCTORS, PARTICIPANTS)


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    group_add: dict[str, list[str]] = field(default_factory=dict)
    group_remove: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.create or self.delete or any(self.group_add.values())
                    or any(self.group_remove.values()))


def plan(roster: Roster, hub_users: set[str], members: dict[str, set[str]],
         skip: set[str] | frozenset[str] = frozenset()) -> Plan:
    """What to change in the hub so that it matches `roster` (pure: no I/O).

    Names in `skip` (listed, but their account could not be made) are neither created nor
    regrouped, and never deleted either: they are listed, only broken.
    """
    wanted = set(roster.accounts)
    desired = {INSTRUCTORS: set(roster.instructors) - skip,
               PARTICIPANTS: set(roster.participants) - skip}
    return Plan(
        create=sorted(wanted - hub_users - skip),
        delete=sorted(hub_users - wanted),
        group_add={g: sorted(desired[g] - members.get(g, set())) for g in desired},
        # Users about to be deleted leave their groups with them.
        group_remove={g: sorted((members.get(g, set()) & wanted) - desired[g] - skip)
                      for g in desired},
    )


@dataclass
class Outcome:
    plan: Plan = field(default_factory=Plan)
    failed: dict[str, str] = field(default_factory=dict)  # user -> why
    killed: dict[str, int] = field(default_factory=dict)  # removed user -> processes


class UsersSync:
    def __init__(self, roster_file: RosterFile, hub: HubAPI, home_root: str = "/home",
                 settle: float = 0.3, *, status_file: str | os.PathLike[str] | None = None,
                 db: SystemDB | None = None,
                 kill: Callable[[int], int] = kill_user_processes) -> None:
        self.roster_file = roster_file
        self.hub = hub
        self.home_root = home_root
        self.settle = settle
        self.status_file = Path(status_file) if status_file is not None else None
        last_good = last_good_path(self.status_file) if self.status_file else None
        self.guarded = GuardedRoster(roster_file, last_good)
        self.db = db or SystemDB()
        self.kill = kill
        self._reported: dict[str, object] = {}
        self._status: dict[str, Any] = {}

    def _settled(self) -> object:
        """Wait until the file stopped changing, so a half-written save is never read."""
        while True:
            before = self.roster_file.signature()
            time.sleep(self.settle)
            if self.roster_file.signature() == before:
                return before

    def _once(self, kind: str, value: object) -> bool:
        """True the first time `value` is seen for `kind`: log a problem once, not forever."""
        if self._reported.get(kind) == value:
            return False
        self._reported[kind] = value
        return True

    def _report(self, verdict: Verdict, outcome: Outcome | None) -> None:
        file, roster = verdict.file, verdict.roster
        problems = tuple(str(p) for p in file.problems) if file else ()
        if self._once("problems", problems):
            for problem in file.problems if file else ():
                kept = roster is not None and problem.name in roster.accounts
                log.error("users.txt %s (line skipped%s)", problem,
                          f"; {problem.name}'s last good entry stays in force" if kept else "")
        if self._once("held", verdict.held) and verdict.held:
            log.error("%s", verdict.held)
        failed = tuple(sorted(outcome.failed.items())) if outcome else ()
        if self._once("failed", failed):
            for name, why in failed:
                log.error("%s skipped: %s", name, why)
        if roster and self._once("counts", (len(roster.accounts), problems, failed)):
            log.info("in force: %d instructors, %d participants; %d lines skipped, "
                     "%d accounts failed", len(roster.instructors), len(roster.participants),
                     len(problems), len(failed))

    def _hub(self, outcome: Outcome, who: str, method: str, path: str, **kwargs: Any) -> bool:
        """One hub request; a failure is recorded for `who` and the sync goes on."""
        try:
            self.hub.request(method, path, **kwargs)
            return True
        except Exception as e:  # anything: one user's trouble never stops the others
            outcome.failed[who] = f"hub: {e}"
            return False

    def _regroup(self, outcome: Outcome, method: str, group: str, names: list[str]) -> None:
        if names and not self._hub(outcome, group, method, f"/groups/{group}/users",
                                   json={"users": names}):
            del outcome.failed[group]  # find the one(s) at fault, one by one
            for name in names:
                self._hub(outcome, name, method, f"/groups/{group}/users",
                          json={"users": [name]})

    def _remove(self, outcome: Outcome, name: str) -> None:
        """End everything of `name`'s, then remove them from the hub; the home is kept.

        Their processes end first (their login is refused already: the roster changed):
        the hub then finds the server gone instead of waiting for a graceful shutdown, so
        a removal takes effect within seconds. Again after the hub's delete, for anything
        started meanwhile."""
        try:
            uid = participant_uid(name, self.home_root, self.db)
            killed = self.kill(uid) if uid is not None else 0
        except Exception as e:  # the hub removal still happens: said, not retried
            outcome.failed[name] = f"its processes could not be ended: {e}"
            uid, killed = None, 0
        if not self._hub(outcome, name, "DELETE", f"/users/{name}", ok=(404,)):
            return
        if uid is not None:
            try:
                killed += self.kill(uid)
            except Exception as e:
                outcome.failed[name] = f"removed, but its processes could not be ended: {e}"
                return
        outcome.killed[name] = killed
        log.info("removed %s (%d processes ended, server gone, home kept)", name, killed)

    def apply(self, roster: Roster, hub_users: set[str] | None = None,
              lines: bool = True) -> Outcome:
        """Make the hub match `roster`; `lines`: the roster is users.txt (name its lines)."""
        outcome = Outcome()
        for account in roster.accounts.values():
            try:
                ensure_system_user(account.name, self.home_root, self.db)
            except Exception as e:  # a reserved name, a failing useradd: this one only
                where = f"users.txt line {account.line}: " if lines else ""
                outcome.failed[account.name] = f"{where}{e}"
        if hub_users is None:
            hub_users = set(self.hub.users())
        members = {g: self.hub.group_members(g) for g in GROUPS}
        outcome.plan = todo = plan(roster, hub_users, members, skip=set(outcome.failed))
        for name in todo.create:
            if self._hub(outcome, name, "POST", f"/users/{name}", ok=(409,)):
                log.info("added %s", name)
        for name in todo.delete:
            self._remove(outcome, name)
        for group, names in todo.group_remove.items():
            self._regroup(outcome, "DELETE", group, names)
        for group, names in todo.group_add.items():
            self._regroup(outcome, "POST", group, names)
            if names:
                log.info("%s: %s", group, ", ".join(names))
        return outcome

    def sync_once(self) -> tuple[Verdict, Outcome | None]:
        """Judge users.txt, apply what is in force, report it; raises on hub trouble."""
        hub_users = set(self.hub.users())
        verdict = self.guarded.current(known=hub_users)
        outcome = None
        if verdict.roster is not None:
            outcome = self.apply(verdict.roster, hub_users, lines=verdict.held is None)
            if verdict.held is None:
                self.guarded.remember(verdict.roster)
        self._report(verdict, outcome)
        self._write_status(verdict, outcome)
        return verdict, outcome

    def _write_status(self, verdict: Verdict | None, outcome: Outcome | None,
                      error: str | None = None) -> None:
        """The status file; after a failed sync (`verdict` None) the last one plus `error`."""
        if verdict is not None:
            roster, file = verdict.roster, verdict.file
            self._status = {
                "users_file": str(self.roster_file.path),
                "held": verdict.held,
                "instructors": len(roster.instructors) if roster else None,
                "participants": len(roster.participants) if roster else None,
                "problems": [{"line": p.line, "message": p.message}
                             for p in (file.problems if file else ())],
                "failed": [{"user": u, "message": m}
                           for u, m in sorted((outcome.failed if outcome else {}).items())],
                "removed": dict(outcome.killed) if outcome else {},
            }
        self._status.update(error=error,
                            updated=datetime.now(UTC).isoformat(timespec="seconds"))
        if self.status_file is None:
            return
        try:
            write_status(self.status_file, self._status)
        except OSError as e:
            log.error("cannot write %s: %s", self.status_file, e)

    def run(self, interval: float = 1.0, full_every: float = 30.0) -> None:
        """Poll forever; sync on every change of the file and every `full_every` seconds."""
        synced: object = ()  # the file's signature at the last sync (never a signature)
        last_full = float("-inf")
        while True:
            signature = self.roster_file.signature()
            if signature != synced or time.monotonic() - last_full >= full_every:
                try:
                    signature = self._settled()
                    self.sync_once()
                    synced, last_full = signature, time.monotonic()
                except Exception as e:  # the hub restarting, a bug: never end the service
                    log.error("sync failed, retrying in a few seconds: %s", e,
                              exc_info=not isinstance(e, OSError | RuntimeError))
                    self._write_status(None, None, error=f"sync failed: {e}")
                    time.sleep(4 * interval)
            time.sleep(interval)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users-file", default=os.environ.get(
        "WORKSHOP_USERS_FILE", "/srv/hub/etc/jupyterhub/users.txt"))
    parser.add_argument("--home-root", default="/home")
    parser.add_argument("--status-file", default=str(status_path()),
                        help="status for the dashboard; the last good users.txt goes next "
                             "to it (default: $WORKSHOP_USERS_SYNC_STATUS or %(default)s)")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="[%(levelname).1s %(asctime)s users-sync] %(message)s")
    UsersSync(RosterFile(args.users_file), HubAPI(), args.home_root,
              status_file=args.status_file).run(args.interval)


if __name__ == "__main__":
    main()
