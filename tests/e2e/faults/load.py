"""Legitimate save traffic from many participants, and what each of them was told.

Each participant is one client thread that saves its notebooks in the order of a plan
(one path per save): the notebook written into its home (as its uid), then a
`save-notebook` event posted with its own token to where the save hook posts (the
dashboard's loopback port).
It behaves as a well-mannered client should:

- 429: waits what Retry-After says, then posts the same event again;
- no answer (the dashboard is down or was killed mid-request): tries again every half
  second until it is answered; a save is never given up.

So every save ends with exactly one answer that counts, a 201 (or the test fails on any
other status), and the ledger holds, for each key (user, path), every 201 body in order.
"Exactly once" is then precise: the stored row of each key is the last 201 its client
got (same id, same receipt time), every 201 of a key carries that id, and no row exists
that no client was told about.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from tests.e2e.faults.classroom import Participant, notebook, save_event

Key = tuple[str, str]  # (user, path)


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)  # 201 bodies
    last_mtime: dict[Key, int] = field(default_factory=dict)  # the last file written
    statuses: Counter[str] = field(default_factory=Counter)  # every attempt's outcome
    failures: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.answers.values())

    def acknowledged_of(self, path: str) -> int:
        with self.lock:
            return sum(len(v) for (_, p), v in self.answers.items() if p == path)

    def note(self, outcome: str) -> None:
        with self.lock:
            self.statuses[outcome] += 1


def plan(saves: int, paths: list[str], last_until: int) -> list[str]:
    """The path of each of `saves` saves: `paths` in turn, the last of them only for the
    first `last_until` saves (so that it is last saved in the middle of the load)."""
    return [paths[n % len(paths)] if n < last_until else paths[n % (len(paths) - 1)]
            for n in range(saves)]


def client(who: Participant, url: str, saves: list[str], ledger: Ledger,
           deadline: float) -> None:
    """One save of each path in `saves`, in order; each retried until answered 201."""
    http = requests.Session()
    for n, path in enumerate(saves):
        mtime = who.write(path, notebook(f"{who.name} save {n}"))
        with ledger.lock:
            ledger.last_mtime[(who.name, path)] = mtime
        event = {**save_event(who.name, path), "timestamp": datetime.now(UTC).isoformat()}
        while True:
            if time.monotonic() > deadline:
                ledger.failures.append(f"{who.name}: save {n} not answered in time")
                return
            try:
                r = http.post(url, json=event, headers=who.auth, timeout=30)
            except requests.RequestException as e:
                ledger.note(type(e).__name__)
                http = requests.Session()  # its pooled connection may be the dead one
                time.sleep(0.5)
                continue
            ledger.note(str(r.status_code))
            if r.status_code == 201:
                with ledger.lock:
                    ledger.answers.setdefault((who.name, path), []).append(r.json())
                break
            if r.status_code == 429:
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            ledger.failures.append(f"{who.name}: save {n}: {r.status_code} {r.text[:200]}")
            return


def run(people: list[Participant], url: str, saves: list[str], ledger: Ledger,
        seconds: float, meanwhile: Callable[[], None] | None = None) -> float:
    """All clients at once, `meanwhile()` in this thread while they run; seconds taken."""
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=client, args=(who, url, saves, ledger, deadline),
                                name=f"load-{who.name}", daemon=True) for who in people]
    for thread in threads:
        thread.start()
    try:
        if meanwhile is not None:
            meanwhile()
    finally:
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic()))
    return time.monotonic() - started


def stored_mismatches(ledger: Ledger, rows: list[dict[str, Any]], users: set[str]
                      ) -> list[str]:
    """Where the stored events of `users` differ from what their clients were told."""
    problems = []
    stored: dict[Key, list[dict[str, Any]]] = {}
    for row in rows:
        if row["user"] in users:
            stored.setdefault((row["user"], row["path"]), []).append(row)
    for key in sorted(stored.keys() - ledger.answers.keys()):
        problems.append(f"{key}: stored, but no client was told 201")
    for key, answers in sorted(ledger.answers.items()):
        rows_of_key = stored.get(key, [])
        if len(rows_of_key) != 1:
            problems.append(f"{key}: {len(rows_of_key)} stored rows, not 1")
            continue
        if {a["id"] for a in answers} != {rows_of_key[0]["id"]}:
            problems.append(f"{key}: ids {sorted({a['id'] for a in answers})} answered, "
                            f"{rows_of_key[0]['id']} stored")
        if rows_of_key[0] != answers[-1]:
            problems.append(f"{key}: stored {rows_of_key[0]}, last 201 said {answers[-1]}")
    return problems
