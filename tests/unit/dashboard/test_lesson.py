"""Lessons cut into exercises, and where an executed cell sits in one."""

from __future__ import annotations

import json
import os
import time

from dashboard import lesson as lesson_module
from dashboard.lesson import (
    Lessons,
    lesson_path,
    parse_lesson,
    place_in_copy,
    slim,
    source_hash,
)

from .livekit import LESSON, code, lesson_cells, md, notebook, write_lesson


def test_headings_make_exercises_and_empty_headings_title_the_next():
    lesson = parse_lesson(LESSON, notebook(lesson_cells()))
    assert lesson.title == "Pandas basics"
    # "# Pandas basics" has code right after it (the import), "## Notes" has none.
    assert lesson.exercises == ("Pandas basics", "Exercise 1: load", "Exercise 2: select",
                                "Exercise 3: plot", "Exercise 4: group")
    assert [s.exercise for s in lesson.steps] == [0, 1, 1, 2, 2, 3, 4, 4]
    assert lesson.headings["Notes"] == 4 and lesson.headings["Exercise 2: select"] == 2


def test_tagged_cells_make_exercises_when_there_are_any():
    cells = [md("# Title"), code("setup()", "a"),
             md("### Try this", tags=["exercise"]), code("one()", "b"), md("## hint"),
             code("two()", "c"), code("three()", "d", tags=["exercise"])]
    lesson = parse_lesson("t.ipynb", notebook(cells))
    assert lesson.exercises == ("Start", "Try this", "three()")
    assert [s.exercise for s in lesson.steps] == [0, 1, 1, 2]


def test_without_headings_every_code_cell_is_an_exercise():
    lesson = parse_lesson("p.ipynb", notebook([code("a = 1", "x"), code("# sum\nb = 2", "y")]))
    assert lesson.exercises == ("a = 1", "sum") and lesson.title == "p"
    assert parse_lesson("e.ipynb", notebook([md("# only text")])) is None


def test_a_cell_is_found_by_id_then_by_its_exact_source():
    lesson = parse_lesson(LESSON, notebook(lesson_cells()))
    assert lesson.locate("c6", None).index == 5
    # The id changed (copied cell, a frontend without ids): the source says which it is.
    assert lesson.locate("other", source_hash("df.plot()")).index == 5
    # The same source twice (df.head() is c3 and c5): the one at or after where they are.
    head = source_hash("df.head()")
    assert lesson.locate(None, head).index == 2
    assert lesson.locate(None, head, near=3).index == 4
    assert lesson.locate(None, head, near=7).index == 4
    assert lesson.locate(None, source_hash("")) is None  # empty cells are anybody's
    assert lesson.locate("nope", source_hash("print('mine')")) is None


def test_updated_copies_are_the_same_lesson():
    assert lesson_path("day1/lesson (updated).ipynb") == "day1/lesson.ipynb"
    assert lesson_path("day1/lesson (updated 3).ipynb") == "day1/lesson.ipynb"
    assert lesson_path("lesson.ipynb") == "lesson.ipynb" and lesson_path(None) is None


def test_own_cells_are_placed_by_what_comes_before_them_in_the_saved_copy():
    lesson = parse_lesson(LESSON, notebook(lesson_cells()))
    cells = lesson_cells()
    mine = code("print('trying things')", "mine")
    copy = notebook([*cells[:7], mine, *cells[7:]])  # after c4, in exercise 2
    assert place_in_copy(lesson, slim(copy), "mine", None) == 2
    # Under a lesson heading whose cells they deleted.
    copy = notebook([cells[0], cells[8], mine])
    assert place_in_copy(lesson, slim(copy), "mine", None) == 3
    assert place_in_copy(lesson, slim(copy), "absent", None) is None


def test_lessons_follow_the_materials_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(lesson_module, "RESCAN_SECONDS", 0)
    lessons = Lessons(tmp_path)
    assert lessons.all() == {}
    write_lesson(tmp_path)
    (tmp_path / "broken.ipynb").write_text("{ not json")
    (tmp_path / ".hidden.ipynb").write_text(json.dumps(notebook(lesson_cells())))
    (tmp_path / "data.csv").write_text("a,b")
    assert list(lessons.all()) == [LESSON]
    version = lessons.version
    file = write_lesson(tmp_path, cells=[md("# New"), code("x = 1", "n1")])
    os.utime(file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert lessons.all()[LESSON].title == "New" and lessons.version > version
    place = lessons.find("day1/lesson (updated).ipynb", "n1", None)
    assert place.step.index == 0 and place.exercise == 0
    # A copy under another name is found by its cells' ids.
    assert lessons.find("renamed.ipynb", "n1", None).lesson.path == LESSON
    assert lessons.find("mine.ipynb", "zzz", None) is None


def test_saved_copies_are_read_at_most_once_per_notebook_and_ttl(tmp_path):
    from dashboard import copies
    from dashboard.copies import SavedCopies
    from dashboard.sources import FileSystemSource

    lesson = parse_lesson(LESSON, notebook(lesson_cells()))
    reads: list[tuple[str, str]] = []
    now = [0.0]
    cells = lesson_cells()
    copy = json.dumps(notebook([*cells[:7], code("mine()", "own"), *cells[7:]]))

    def read(user: str, path: str) -> str:
        reads.append((user, path))
        return copy

    saved = SavedCopies(read, clock=lambda: now[0])
    assert saved.place("alice", LESSON, lesson, "own", None) == 2
    assert saved.place("alice", LESSON, lesson, "other", None) is None  # not in the copy
    assert reads == [("alice", LESSON)]  # one read for both
    now[0] += copies.TTL + 1
    saved.place("alice", LESSON, lesson, "own", None)
    assert len(reads) == 2
    saved = SavedCopies(lambda u, p: (_ for _ in ()).throw(OSError("gone")))
    assert saved.place("alice", LESSON, lesson, "own", None) is None  # unreadable: unplaced
    # Only homes on disk are read: never a participant's server on a request thread.
    assert SavedCopies.for_source(FileSystemSource(tmp_path)) is not None
    assert SavedCopies.for_source(object()) is None
