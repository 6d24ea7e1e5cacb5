"""What the live view's e2e tests and benchmarks share: the lesson handed out, and a
kernel started and driven the way JupyterLab does it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.e2e.hubclient import HubSession, Kernel

LESSON = "day1/lesson.ipynb"


def _md(source: str, n: int) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": f"md-{n}", "metadata": {}, "source": source}


def _code(source: str, cell_id: str) -> dict[str, Any]:
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "source": source,
            "execution_count": None, "outputs": []}


LESSON_CELLS = [
    _md("# Python warm-up", 1), _code("x = 1", "warm-1"),
    _md("## Exercise 1: lists", 2), _code("numbers = [1, 2, 3]", "lists-1"),
    _code("total = sum(numbers)", "lists-2"),
    _md("## Exercise 2: loops", 3), _code("squares = [n * n for n in numbers]", "loops-1"),
    _code("print(squares)", "loops-2"),
    _md("## Exercise 3: functions", 4), _code("def double(n):\n    return 2 * n", "fn-1"),
    _code("double(total)", "fn-2"),
    _md("## Exercise 4: dicts", 5), _code("ages = {'ann': 31}", "dict-1"),
]
EXERCISES = ["Python warm-up", "Exercise 1: lists", "Exercise 2: loops",
             "Exercise 3: functions", "Exercise 4: dicts"]
LESSON_JSON = json.dumps({"cells": LESSON_CELLS, "metadata": {}, "nbformat": 4,
                          "nbformat_minor": 5}, indent=1)


class NotebookKernel(Kernel):
    """A kernel started for a notebook the way JupyterLab starts one (a session with the
    notebook's path: jupyter_server tells the kernel), run cell by cell with each cell's
    id in the request's metadata, as JupyterLab sends it."""

    def __init__(self, session: HubSession, path: str) -> None:
        r = session.server_api("POST", "/sessions", json={
            "path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook",
            "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        self.session_id = r.json()["id"]
        super().__init__(session, r.json()["kernel"]["id"])
        self.cell_id: str | None = None

    def send_execute(self, code: str, store_history: bool = True) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "e2e",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "channel": "shell", "buffers": [],
            "metadata": {"cellId": self.cell_id} if self.cell_id else {},
            "content": {"code": code, "silent": False, "store_history": store_history,
                        "user_expressions": {}, "allow_stdin": False}}))
        return msg_id

    def run_cell(self, cell: dict[str, Any]) -> dict[str, str]:
        self.cell_id = cell.get("id")
        try:
            return self.execute(cell["source"])
        finally:
            self.cell_id = None

    def close(self) -> None:
        super().close()
        self.session.server_api("DELETE", f"/sessions/{self.session_id}")

