"""What a kernel reports about one cell (etc/ipython/workshop_feed/record.py)."""

from __future__ import annotations

from types import SimpleNamespace

from dashboard.lesson import source_hash as dashboard_hash
from etc.ipython.workshop_feed import record


def result(source: str, error: BaseException | None = None, cell_id: str | None = "c1",
           count: int | None = 3) -> SimpleNamespace:
    info = SimpleNamespace(raw_cell=source, cell_id=cell_id, silent=False, store_history=True)
    return SimpleNamespace(info=info, error_before_exec=None, error_in_exec=error,
                           execution_count=count)


def test_an_ok_cell():
    r = record.build(result=result("x = 1\nprint(x)"), duration=0.25,
                     path="day1/intro.ipynb", parent=None)
    assert r["ok"] is True and r["error"] is None and r["count"] == 3
    assert r["head"] == "x = 1\nprint(x)" and r["cell"] == "c1" and r["duration"] == 0.25
    assert r["at"].endswith("+00:00") and r["path"] == "day1/intro.ipynb"


def test_the_source_hash_is_the_dashboards():
    # The one contract between the kernel and the dashboard's lessons.
    for source in ("", "print('ü')\n", "a\r\nb", "\ud800 lone surrogate"):
        assert record.source_hash(source) == dashboard_hash(source)


def test_an_error_is_its_name_and_a_bounded_one_message():
    r = record.build(result=result("1/0", ZeroDivisionError("division by zero")), duration=0,
                     path=None, parent=None)
    assert r["ok"] is False
    assert r["error"] == {"name": "ZeroDivisionError", "message": "division by zero"}
    long = record.build(result=result("x", KeyError("k" * 10_000)), duration=0, path=None,
                        parent=None)
    assert len(long["error"]["message"]) == record.MESSAGE_CHARS


def test_a_hostile_exception_cannot_break_the_record():
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no message for you")

    r = record.build(result=result("raise Nasty()", Nasty()), duration=0, path=None,
                     parent=None)
    assert r["error"]["name"] == "Nasty" and "could not be read" in r["error"]["message"]
    controls = record.build(result=result("x", ValueError("a\x00b\x1b[31mc\nd\ud800")),
                            duration=0, path=None, parent=None)
    assert controls["error"]["message"] == "a b [31mc\nd?"


def test_the_head_is_the_first_lines_cut_short():
    assert record.head("\n\n" + "\n".join(f"line {i}" for i in range(50))) == \
        "line 0\nline 1\nline 2"
    long = record.head("\n".join(f"line {i} " + "x" * 300 for i in range(50)))
    assert len(long) == record.HEAD_CHARS and long.startswith("line 0 x")
    assert len(long.split("\n")[0]) == record.HEAD_LINE_CHARS
    assert record.head("y = 1" + "\n" * 10**6 + "z") == "y = 1"  # a pasted monster


def test_the_cell_id_from_ipython_or_the_request_metadata():
    info = SimpleNamespace(cell_id=None)
    assert record.cell_id(info, {"metadata": {"cellId": "a1-b2_c3"}}) == "a1-b2_c3"
    assert record.cell_id(SimpleNamespace(cell_id="x9"), None) == "x9"
    assert record.cell_id(info, {"metadata": {"cellId": "<script>"}}) is None
    assert record.cell_id(info, {"metadata": "nope"}) is None
    assert record.cell_id(info, None) is None


def test_the_notebook_path_below_the_home():
    home = "/home/alice"
    assert record.notebook_path("/home/alice/day1/intro.ipynb", home) == "day1/intro.ipynb"
    assert record.notebook_path("day1/intro.ipynb", home) == "day1/intro.ipynb"
    assert record.notebook_path("/home/bob/x.ipynb", home) is None
    assert record.notebook_path("/etc/passwd", home) is None
    assert record.notebook_path("", home) is None and record.notebook_path(None, home) is None
