"""The workshop's kernel extension: every executed cell is reported to the dashboard, and
`%help` asks the instructor for help.

Loaded into every participant's IPython kernel by the system-wide configuration next to
this package (etc/ipython/ipython_kernel_config.py, mounted at /etc/ipython). It needs the
environment a participant's server gives its kernels: WORKSHOP_EVENTS_URL (the spawner's),
JUPYTERHUB_API_TOKEN and JUPYTERHUB_USER (the hub's) and, for the notebook's path,
JPY_SESSION_NAME (jupyter_server's, set when a notebook starts its kernel). Without the
first three it does nothing: plain IPython elsewhere is left alone.

The participant's code must never notice: the hooks do a few microseconds of work on the
kernel's thread (benchmarks/kernel_overhead.py), catch everything, and hand the record to
a background sender (sender.py). A participant can of course unload it, or post what they
like with their token: the dashboard trusts nothing in a record but whose token sent it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
from typing import Any

from . import record
from .helpmagic import HelpMagic
from .sender import Sender

# Cells started but not finished: a cell that calls run_cell nests, and a cell whose
# finish never comes (the kernel was interrupted inside IPython itself) must not make
# this grow.
MAX_OPEN_CELLS = 100

FEED: Feed | None = None  # the loaded extension, for tests and `get_ipython()` questions


class Feed:
    def __init__(self, shell: Any, sender: Sender, path: str | None) -> None:
        self.shell = shell
        self.sender = sender
        self.path = path
        self._started: dict[int, float] = {}

    def pre_run_cell(self, info: Any) -> None:
        try:
            if len(self._started) >= MAX_OPEN_CELLS:
                self._started.clear()
            self._started[id(info)] = time.perf_counter()
        except Exception:
            pass

    def post_run_cell(self, result: Any) -> None:
        try:
            info = getattr(result, "info", None)
            started = self._started.pop(id(info), None)
            if info is None or info.silent or not info.store_history:
                return  # the frontend's own questions (completion, variables), not cells
            duration = time.perf_counter() - started if started is not None else 0.0
            self.sender.add(record.build(result=result, duration=duration,
                                         path=self.path, parent=self._parent()))
        except Exception:
            pass

    def _parent(self) -> dict[str, Any] | None:
        kernel = getattr(self.shell, "kernel", None)
        try:
            return kernel.get_parent() if kernel is not None else None
        except Exception:
            return None


def load_ipython_extension(shell: Any) -> None:
    global FEED
    url = os.environ.get("WORKSHOP_EVENTS_URL", "")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    user = os.environ.get("JUPYTERHUB_USER", "")
    if not (url and token and user) or FEED is not None:
        return
    path = record.notebook_path(os.environ.get("JPY_SESSION_NAME"),
                                os.path.expanduser("~"))
    sender = Sender(url, token, user)
    FEED = Feed(shell, sender, path)
    shell.events.register("pre_run_cell", FEED.pre_run_cell)
    shell.events.register("post_run_cell", FEED.post_run_cell)
    shell.register_magic_function(HelpMagic(url, token, user, path), "line", "help")
    atexit.register(sender.flush)  # what the last cells did, if the dashboard answers


def unload_ipython_extension(shell: Any) -> None:
    global FEED
    if FEED is None:
        return
    for event, callback in (("pre_run_cell", FEED.pre_run_cell),
                            ("post_run_cell", FEED.post_run_cell)):
        with contextlib.suppress(ValueError):
            shell.events.unregister(event, callback)
    FEED.sender.stop()
    FEED = None
