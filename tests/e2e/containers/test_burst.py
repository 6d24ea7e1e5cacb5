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
    """The spawn page's progress events for `session`'s server, from the moment its start
    is pending until it is ready or failed."""
    url = f"{session.base}/hub/api/users/{session.name}/server/progress"
    deadline = time.monotonic() + 30
    while True:  # the endpoint answers only once the start is under way
        r = session.http.get(url, stream=True, timeout=timeout,
                             headers={"Accept": "text/event-stream", **session._hub_xsrf()})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        r.close()
        time.sleep(0.1)
    messages: list[str] = []
    with r:
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
    # A few participants watch their spawn page (whoever is in line must see their place).
    seen: list[str] = []
    watchers = [threading.Thread(target=lambda s=s: seen.extend(progress_messages(s)),
                                 daemon=True) for s in sessions[-3:]]
    answers: list[int] = []

    def press_start(session: HubSession) -> None:
        answers.append(session.hub_api("POST", f"/users/{session.name}/server").status_code)

    started = time.monotonic()
    try:
        # 20 people pressing Start at the same moment; the last one watches the spawn page.
        pressing = [threading.Thread(target=press_start, args=(s,)) for s in sessions]
        for thread in pressing:
            thread.start()
        for watcher in watchers:
            watcher.start()
        for thread in pressing:
            thread.join(120)
        assert set(answers) <= {201, 202} and len(answers) == CLASS, answers
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
        for watcher in watchers:
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
