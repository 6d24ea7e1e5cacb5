"""Progress through a lesson, and who is stuck."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.lesson import Lessons
from dashboard.progress import ClassProgress, class_median, stuck

from .livekit import LESSON, execution, write_lesson

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def row(user: str, cell: str | None, ok: bool = True, minutes: float = 0, **kw) -> dict:
    e = execution(cell, ok, at=(NOW + timedelta(minutes=minutes)).isoformat(), **kw)
    error = e["error"] or {}
    return {"user": user, "kernel": "k", "seq": e["seq"], "at": e["at"], "path": e["path"],
            "cell": e["cell"], "count": e["count"], "ok": ok, "error_name": error.get("name"),
            "error_message": error.get("message"), "duration": e["duration"],
            "head": e["head"], "source_hash": e["source_hash"]}


def progress(tmp_path) -> ClassProgress:
    write_lesson(tmp_path)
    lessons = Lessons(tmp_path)
    lessons.all()
    return ClassProgress(lessons)


def test_furthest_current_and_the_state_of_each_exercise(tmp_path):
    p = progress(tmp_path)
    for r in (row("alice", "c1"), row("alice", "c2", minutes=1), row("alice", "c4", False, 2),
              row("alice", "c2", minutes=3)):
        p.add(r)
    with p.reading() as people:
        alice = people["alice"].lessons[LESSON]
        assert alice.furthest == 2 and alice.current == 1
        assert alice.states == {0: "ok", 1: "ok", 2: "error"}
        assert alice.since == NOW + timedelta(minutes=2)
        assert people["alice"].last["exercise"] == 1 and not people["alice"].last["own"]


def test_a_cell_of_their_own_keeps_them_where_they_were(tmp_path):
    p = progress(tmp_path)
    p.add(row("alice", "c4"))
    p.add(row("alice", "mine", source="print('experiment')"))
    with p.reading() as people:
        assert people["alice"].lessons[LESSON].furthest == 2
        assert people["alice"].last["own"] and people["alice"].last["exercise"] is None


def test_stuck_on_the_same_error_for_long_enough(tmp_path):
    p = progress(tmp_path)
    for minute in range(4):
        p.add(row("alice", "c4", False, minute))
    with p.reading() as people:
        alice = people["alice"]
        rules = {"error_after": timedelta(minutes=3), "behind_after": timedelta(minutes=5)}
        assert stuck(alice, LESSON, 2, NOW + timedelta(minutes=2), **rules) is None
        s = stuck(alice, LESSON, 2, NOW + timedelta(minutes=4), **rules)
        assert s["reason"] == "error" and s["runs"] == 4 and s["text"] == "NameError for 4 min"
    p.add(row("alice", "c4", False, 5, message="another message"))  # a new error: new streak
    with p.reading() as people:
        assert stuck(people["alice"], LESSON, 2, NOW + timedelta(minutes=6), **rules) is None
    p.add(row("alice", "c4", True, 6))
    with p.reading() as people:
        assert people["alice"].streak is None


def test_behind_when_the_class_moved_on(tmp_path):
    p = progress(tmp_path)
    p.add(row("alice", "c1"))
    for user in ("bob", "carol"):
        p.add(row(user, "c1"))
        p.add(row(user, "c6", minutes=8))
    rules = {"error_after": timedelta(minutes=3), "behind_after": timedelta(minutes=5)}
    with p.reading() as people:
        median = class_median(people.values(), LESSON)
        assert median == 3
        s = stuck(people["alice"], LESSON, median, NOW + timedelta(minutes=9), **rules)
        assert s["reason"] == "behind" and s["text"] == "no new exercise for 9 min"
        assert stuck(people["bob"], LESSON, median, NOW + timedelta(minutes=9), **rules) is None
        # Not yet: alice reached her exercise less than 5 minutes ago.
        assert stuck(people["alice"], LESSON, median, NOW + timedelta(minutes=4), **rules) is None


def test_a_rebuild_gives_the_same_state_as_the_executions_one_by_one(tmp_path):
    rows = [row("alice", c, ok=c != "c5", minutes=i) for i, c in
            enumerate(["c1", "c2", "c3", "c5", "c4", "c7"])]
    one = progress(tmp_path)
    for r in rows:
        one.add(r)
    other = progress(tmp_path)
    other.rebuild(rows)
    with one.reading() as a, other.reading() as b:
        assert a["alice"].lessons == b["alice"].lessons and a["alice"].last == b["alice"].last
