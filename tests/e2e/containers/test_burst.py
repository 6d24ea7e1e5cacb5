"""A class-sized burst in containers mode: 20 participants press Start at the same moment.
All servers come up, none fails for having waited its turn, and a participant in line
sees their place on the spawn page's progress stream (issue 16)."""

from __future__ import annotations

import json
import threading
import time

import requests

from benchmarks.burst_login import participants
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within

CLASS = 20


def progress_messages(session: HubSession, timeout: float = 300) -> list[str]:
    """The spawn page's progress events for `session`'s server, until ready or failed."""
    url = f"{session.base}/hub/api/users/{session.name}/server/progress"
    messages: list[str] = []
    with session.http.get(url, stream=True, timeout=timeout,
                          headers={"Accept": "text/event-stream"}) as r:
        r.raise_for_status()
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                messages.append(event.get("message", ""))
                if event.get("ready") or event.get("failed"):
                    break
    return messages


def test_twenty_start_at_once_all_ready_none_failed(stack: Stack):
    people = participants(CLASS, prefix="burst")
    stack.write_users(stack.users_file.read_text() + "[participants]\n"
                      + "".join(f"{name}:{password}\n" for name, password in people))
    within(20, lambda: all(HubSession(n).can_login(p) for n, p in people[-1:]),
           "the class can log in")
    sessions = []
    for name, password in people:
        session = HubSession(name)
        session.login(password)
        sessions.append(session)
    last = sessions[-1]
    seen: list[str] = []
    watcher = threading.Thread(target=lambda: seen.extend(progress_messages(last)),
                               daemon=True)
    started = time.monotonic()
    try:
        for session in sessions:  # as fast as 20 people pressing Start
            r = session.hub_api("POST", f"/users/{session.name}/server")
            assert r.status_code in (201, 202), r.text
            if session is last:
                watcher.start()
        ready: dict[str, float] = {}
        deadline = time.monotonic() + 600
        while len(ready) < CLASS and time.monotonic() < deadline:
            for session in sessions:
                if session.name in ready:
                    continue
                server = session.user_model().get("servers", {}).get("")
                assert server is not None, f"{session.name}'s server failed to start"
                if server.get("ready"):
                    ready[session.name] = time.monotonic() - started
            time.sleep(1)
        assert len(ready) == CLASS, f"not ready: {set(p for p, _ in people) - set(ready)}"
        print(f"\n{CLASS} containers: all ready in {max(ready.values()):.1f}s, "
              f"first {min(ready.values()):.1f}s")
        watcher.join(60)
        assert any("ahead of you" in m for m in seen), seen
        for session in sessions[:3]:
            assert session.open_lab().status_code == 200
    finally:
        for session in sessions:
            session.hub_api("DELETE", f"/users/{session.name}/server")
        within(180, lambda: not any(s.user_model().get("servers") for s in sessions),
               "the class's servers stop")
        assert requests.get(stack.addresses.hub("/hub/health"), timeout=10).ok
