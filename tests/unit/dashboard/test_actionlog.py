"""The instructors' action log."""

from __future__ import annotations

import pytest

from dashboard.actionlog import MAX_RECENT, ActionLog


def test_records_newest_first_and_survives_reopen(tmp_path):
    log = ActionLog(tmp_path / "actions.sqlite")
    first = log.record("teacher", "restart", "bob", "ok", {"seconds": 3.2})
    log.record("teacher", "handout", "all participants", "failed", {"failed": ["eve"]})
    recent = ActionLog(tmp_path / "actions.sqlite").recent()
    assert [a["action"] for a in recent] == ["handout", "restart"]
    assert recent[1] == first and recent[1]["detail"] == {"seconds": 3.2}
    assert recent[0]["at"].endswith("+00:00") and recent[0]["outcome"] == "failed"
    assert len(log.recent(limit=1)) == 1


@pytest.mark.parametrize(("limit", "count"),
                         [(-1, 0), (0, 0), (2, 2), (MAX_RECENT + 1, 3), (10**30, 3)])
def test_limit_is_kept_within_bounds(tmp_path, limit, count):
    log = ActionLog(tmp_path / "actions.sqlite")
    for n in range(3):
        log.record("teacher", "restart", f"p{n}", "ok")
    assert len(log.recent(limit)) == count
