"""A real IPython kernel (ipykernel, started like jupyter_server starts it) with the
system-wide configuration of etc/ipython: cells are reported with their cell ids and
notebook path; with the dashboard down they run at normal speed, nothing raises into the
participant's code, the drop counter rises; with it back, executions flow again."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from tests.e2e.hubclient import within

from .fakedash import FakeDashboard, free_port

CONFIG = Path(__file__).resolve().parents[3] / "etc" / "ipython" / "ipython_kernel_config.py"


class Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(extra_arguments=[f"--config={CONFIG}"], env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self._out: list[dict] = []

    def run(self, code: str, cell_id: str | None = None, timeout: float = 30) -> dict:
        """Execute like JupyterLab does (cellId in the request's metadata); the reply."""
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        msg = self.client.session.msg("execute_request", content,
                                      metadata={"cellId": cell_id} if cell_id else {})
        self.client.shell_channel.send(msg)
        while True:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]

    def value(self, expression: str) -> str:
        reply = self.client.execute_interactive(
            f"print({expression})", timeout=30, store_history=False,
            output_hook=lambda m: self._out.append(m))
        assert reply["content"]["status"] == "ok"
        texts = [m["content"].get("text", "") for m in self._out
                 if m["msg_type"] == "stream"]
        self._out.clear()
        return "".join(texts).strip()

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel_env(tmp_path) -> dict[str, str]:
    return {**os.environ, "HOME": str(tmp_path), "JUPYTERHUB_API_TOKEN": "alice-token",
            "JUPYTERHUB_USER": "alice", "IPYTHONDIR": str(tmp_path / ".ipython"),
            "JPY_SESSION_NAME": str(tmp_path / "day1" / "intro.ipynb")}


@pytest.fixture
def dashboard() -> Iterator[FakeDashboard]:
    fake = FakeDashboard().start()
    yield fake
    fake.stop()


def test_a_real_kernel_reports_cells_with_ids_and_path(kernel_env, dashboard):
    kernel = Kernel({**kernel_env, "WORKSHOP_EVENTS_URL": dashboard.url})
    try:
        assert kernel.run("a = 1", cell_id="first-cell")["status"] == "ok"
        assert kernel.run("1 / 0", cell_id="second-cell")["status"] == "error"
        within(10, lambda: len(dashboard.executions()) == 2, "two cells reported")
        first, second = dashboard.executions()
        assert first["cell"] == "first-cell" and first["path"] == "day1/intro.ipynb"
        assert first["ok"] and first["count"] == 1
        assert second["error"] == {"name": "ZeroDivisionError", "message": "division by zero"}
        assert dashboard.tokens[0] == "token alice-token"
    finally:
        kernel.stop()


def test_with_the_dashboard_down_cells_run_normally_and_drops_are_counted(kernel_env):
    port = free_port()  # nothing listens here yet
    down = FakeDashboard(port)
    kernel = Kernel({**kernel_env, "WORKSHOP_EVENTS_URL": down.url})
    try:
        timings = []
        for i in range(20):
            started = time.monotonic()
            reply = kernel.run(f"v = {i} * 2", cell_id=f"c{i}")
            timings.append(time.monotonic() - started)
            assert reply["status"] == "ok"  # nothing raised into the participant's code
        # Normal speed: no cell waits for the dashboard (a post would take up to 5 s).
        assert statistics.median(timings) < 0.25 and max(timings) < 1.0, timings
        # More than the buffer holds (1000): the oldest are dropped, and counted.
        reply = kernel.run("for _ in range(1200): get_ipython().run_cell('pass', "
                           "store_history=True)")
        assert reply["status"] == "ok"
        stats = "__import__('workshop_feed').FEED.sender.stats()"
        assert int(kernel.value(f"{stats}['dropped']")) >= 200
        assert int(kernel.value(f"{stats}['failures']")) >= 1
        # The dashboard comes back: buffered and new executions flow again.
        down.start()
        marker = uuid.uuid4().hex[:8]
        kernel.run(f"'{marker}'", cell_id="after")
        within(20, lambda: any(e["cell"] == "after" for e in down.executions()),
               "new executions arrive once the dashboard is back")
        assert max(p["dropped"] for p in down.posts) >= 200
    finally:
        kernel.stop()
        down.stop()
