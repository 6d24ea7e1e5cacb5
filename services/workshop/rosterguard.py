"""The mass-removal guard: a users.txt that suddenly drops the class is not applied.

Editors truncate a file before writing it, sync tools deliver half a file, a wrong file
gets saved over the right one. Applied as it is, each of these would log the whole class
out in the middle of the session. So a new users.txt is compared with the last good one
(the last file users-sync applied) and held back, the last good one staying in force,
when it

- lists nobody at all while the last good one listed somebody, or
- removes more than half of the people at once, and more than `SMALL_REMOVAL` of them
  (a class of 3 may lose 2; a class of 20 may lose 10 in one save, not 11).

Removing many people on purpose takes one deliberate line in users.txt, the number of
people it removes: ``# confirm: remove 14`` (or removing them in smaller steps). Adding
people, changing passwords and instructor marks are never held back.

A line that names someone already in the class but is broken (a password retyped in a
Latin-1 editor, a truncated bcrypt hash) is reported like any broken line, and that
person's last good entry stays in force: a typo never logs a participant out mid-class.

users-sync and the hub's authenticator judge the same file against the same last good copy
(users-sync writes it; `syncstatus.last_good_path`), so a login sees exactly the list
users-sync keeps in force, after a restart too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Set
from dataclasses import dataclass, replace
from pathlib import Path

from .roster import Roster, RosterFile, RosterUnavailable, format_roster, replace_file

log = logging.getLogger(__name__)

SMALL_REMOVAL = 3  # this many people may always be removed in one save
NAMES_SHOWN = 8  # in a message, the removed people beyond this are only counted


def keep_broken_lines(roster: Roster, baseline: Roster | None) -> Roster:
    """`roster` plus the last good entry of everyone whose line is now broken."""
    if baseline is None:
        return roster
    kept = {p.name: baseline.accounts[p.name] for p in roster.problems
            if p.name in baseline.accounts and p.name not in roster.accounts}
    if not kept:
        return roster
    return replace(roster, accounts={**roster.accounts, **kept})


def removal_refused(before: Set[str], roster: Roster) -> str | None:
    """Why `roster` must not replace a list of the people `before`, or None when it may."""
    removed = sorted(set(before) - set(roster.accounts))
    if not removed or roster.confirm_remove == len(removed):
        return None
    if roster.accounts and (len(removed) <= SMALL_REMOVAL or 2 * len(removed) <= len(before)):
        return None
    names = ", ".join(removed[:NAMES_SHOWN])
    if len(removed) > NAMES_SHOWN:
        names += f" and {len(removed) - NAMES_SHOWN} more"
    what = (f"lists nobody (the last good list has {len(before)})" if not roster.accounts
            else f"removes {len(removed)} of {len(before)} people at once ({names})")
    return (f"users.txt {what}: not applied, the last good list stays in force. If this is "
            f"meant, add the line '# confirm: remove {len(removed)}' to users.txt.")


@dataclass(frozen=True)
class Verdict:
    """What is in force now, and whether users.txt itself is."""

    roster: Roster | None  # in force: the file's, or the last good one; None: nothing known
    file: Roster | None  # users.txt as read; None when it cannot be read
    held: str | None = None  # why users.txt is not in force (None: it is)


class GuardedRoster:
    """users.txt as the hub may use it: the file when it passes the guard, else the last
    good roster.

    The baseline is the last good copy on disk when there is one (written by users-sync,
    shared by every process), else the last roster this object accepted, else `known`
    (names only: what the hub has, so even a first start never empties it).
    """

    def __init__(self, users: RosterFile, last_good: str | os.PathLike[str] | None = None
                 ) -> None:
        self.users = users
        self.last_good = RosterFile(last_good) if last_good is not None else None
        self._accepted: Roster | None = None

    def baseline(self) -> Roster | None:
        if self.last_good is not None:
            try:
                return self.last_good.load()
            except RosterUnavailable:
                pass  # none written yet (first start, or no users-sync on this hub)
        return self._accepted

    def judge(self, roster: Roster, known: Set[str] = frozenset()) -> Verdict:
        """Whether `roster` (users.txt as read) may be in force now."""
        baseline = self.baseline()
        roster = keep_broken_lines(roster, baseline)
        before = set(baseline.accounts) if baseline is not None else set(known)
        held = removal_refused(before, roster)
        return Verdict(baseline if held else roster, roster, held)

    def current(self, known: Set[str] = frozenset()) -> Verdict:
        """What is in force now; `known`: the hub's users, the baseline of a first start."""
        try:
            roster = self.users.load()
        except RosterUnavailable as e:
            return Verdict(self.baseline(), None, f"{e}; the last good list stays in force")
        verdict = self.judge(roster, known)
        if verdict.held is None:
            self._accepted = verdict.roster
        return verdict

    def remember(self, roster: Roster) -> None:
        """Make `roster` the last good one for every process (users-sync, after applying)."""
        self._accepted = roster
        if self.last_good is None:
            return
        path = Path(self.last_good.path)
        data = format_roster(roster).encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            return  # the full sync every half minute rewrites nothing
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Holds passwords like users.txt: 0600, in the hub's private state directory.
        replace_file(path, data, mode=0o600)
