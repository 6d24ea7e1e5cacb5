"""The users-sync service: keeps the hub in step with users.txt while the hub runs.

Started and supervised by JupyterHub as a managed service (running as root in the
container, with a role limited to users, servers and groups). It watches users.txt and,
within about a second of a saved edit:

- creates the system account, home and hub user of every new participant;
- puts instructors in the `instructors` group and everyone else in `participants`
  (roles granted to those groups decide what each may do);
- stops the server of, and deletes from the hub, every user no longer listed (their home
  stays on disk: nothing is lost, and re-adding them brings it back);
- reports every skipped line with its line number.

Nobody else's server, kernel or session is touched. An unreadable file changes nothing:
the last good state stays in force until the file is readable again.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass, field

from .accounts import ensure_system_user
from .hubapi import HubAPI, HubAPIError
from .roster import Roster, RosterFile, RosterUnavailable

log = logging.getLogger("users-sync")

INSTRUCTORS = "instructors"
PARTICIPANTS = "participants"


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    group_add: dict[str, list[str]] = field(default_factory=dict)
    group_remove: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.create or self.delete or any(self.group_add.values())
                    or any(self.group_remove.values()))


def plan(roster: Roster, hub_users: set[str], members: dict[str, set[str]]) -> Plan:
    """What to change in the hub so that it matches `roster` (pure: no I/O)."""
    wanted = set(roster.accounts)
    desired = {INSTRUCTORS: set(roster.instructors), PARTICIPANTS: set(roster.participants)}
    return Plan(
        create=sorted(wanted - hub_users),
        delete=sorted(hub_users - wanted),
        group_add={g: sorted(desired[g] - members.get(g, set())) for g in desired},
        # Users about to be deleted leave their groups with them.
        group_remove={g: sorted((members.get(g, set()) & wanted) - desired[g])
                      for g in desired},
    )


class UsersSync:
    def __init__(self, roster_file: RosterFile, hub: HubAPI, home_root: str = "/home",
                 settle: float = 0.3) -> None:
        self.roster_file = roster_file
        self.hub = hub
        self.home_root = home_root
        self.settle = settle
        self._reported: tuple[str, ...] | None = None

    def _stable_roster(self) -> Roster:
        """Read the file once it stopped changing, so a half-written save is never applied."""
        while True:
            before = self.roster_file.signature()
            time.sleep(self.settle)
            if self.roster_file.signature() == before:
                return self.roster_file.load()

    def _report(self, roster: Roster) -> None:
        lines = tuple(str(p) for p in roster.problems)
        if lines == self._reported:
            return
        self._reported = lines
        for line in lines:
            log.error("users.txt %s (line skipped)", line)
        log.info("users.txt: %d instructors, %d participants, %d lines skipped",
                 len(roster.instructors), len(roster.participants), len(lines))

    def apply(self, roster: Roster) -> Plan:
        for name in roster.accounts:
            ensure_system_user(name, self.home_root)
        hub_users = set(self.hub.users())
        members = {g: self.hub.group_members(g) for g in (INSTRUCTORS, PARTICIPANTS)}
        todo = plan(roster, hub_users, members)
        if todo.create:
            self.hub.request("POST", "/users", json={"usernames": todo.create})
            log.info("added %s", ", ".join(todo.create))
        for name in todo.delete:
            # Stops the server first; the home directory is kept.
            self.hub.request("DELETE", f"/users/{name}", ok=(404,))
            log.info("removed %s (server stopped, home kept)", name)
        for group, names in todo.group_remove.items():
            if names:
                self.hub.request("DELETE", f"/groups/{group}/users", json={"users": names})
        for group, names in todo.group_add.items():
            if names:
                self.hub.request("POST", f"/groups/{group}/users", json={"users": names})
                log.info("%s: %s", group, ", ".join(names))
        return todo

    def run(self, interval: float = 1.0, full_every: float = 30.0) -> None:
        """Poll forever; apply on every change of the file and every `full_every` seconds."""
        applied = None
        last_full = 0.0
        missing_reported = False
        while True:
            signature = self.roster_file.signature()
            due = time.monotonic() - last_full >= full_every
            if signature is None:
                if not missing_reported:
                    log.error("%s is missing; keeping the last good state",
                              self.roster_file.path)
                    missing_reported = True
                applied = None
            elif signature != applied or due:
                missing_reported = False
                try:
                    roster = self._stable_roster()
                    self._report(roster)
                    self.apply(roster)
                    applied, last_full = signature, time.monotonic()
                except RosterUnavailable as e:
                    log.error("%s; keeping the last good state", e)
                except (HubAPIError, OSError, RuntimeError) as e:
                    log.error("sync failed, retrying: %s", e)
            time.sleep(interval)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users-file", default=os.environ.get(
        "WORKSHOP_USERS_FILE", "/srv/hub/etc/jupyterhub/users.txt"))
    parser.add_argument("--home-root", default="/home")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="[%(levelname).1s %(asctime)s users-sync] %(message)s")
    UsersSync(RosterFile(args.users_file), HubAPI(), args.home_root).run(args.interval)


if __name__ == "__main__":
    main()
