"""Render processes: one notebook cannot stall, or exhaust, the dashboard.

    pool = RenderPool(renderer.convert_options, size=2)
    converted = pool.convert(content)   # from a worker thread; blocks until done
    pool.close()

Each slot is one long-lived process that runs `convert.convert` on one notebook at a time.
Processes come from multiprocessing's forkserver with nbconvert imported and warmed up
(`PRELOAD`): a new one costs milliseconds, not the seconds nbconvert takes to import, and
the time limit starts only when it says it is ready.

The limits (limits.Limits) hold however the notebook is built:

* time: the caller waits at most `seconds`; a process that takes longer is killed and
  replaced, and the notebook becomes a placeholder ("took too long to render");
* memory: a process's address space is capped (RLIMIT_AS, `memory_bytes`); a notebook
  that needs more gets a placeholder, and the process quits and is replaced;
* size: the answer is read up to what the limits allow the view and fragment to be.

Only bytes and JSON cross the pipe: the dashboard never unpickles what a process that
handled a participant's notebook sends back.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import multiprocessing
import queue
import resource
import signal
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from .convert import Converted, convert
from .ipytail import Facts
from .limits import RENDER_PROCESSES, Limits, size_text

log = logging.getLogger("dashboard.renderpool")

HEADER_BYTES = 64 * 1024  # the JSON before the HTML in an answer: facts and lengths
# Imported once by the forkserver, so that each render process starts warm. Python 3.11's
# forkserver imports these with its own sys.path (the venv, and the working directory: the
# services folder when the hub starts the dashboard). Where `dashboard` is not on it (tests)
# the third-party imports, most of the cost, still happen there.
PRELOAD = ["nbformat", "nbconvert", "bleach.css_sanitizer", "dashboard.render_preload"]
READY = b"ready"  # a new process's first message: its start is not a notebook's time
# Seconds a new process may take to say READY: a cold start imports nbconvert (~4 s on a
# small droplet) and warms up when the forkserver could not do it.
START_SECONDS = 60.0
_CONTEXT = multiprocessing.get_context("forkserver")


def serve(conn: Connection, options_json: str) -> None:
    """A render process's life: warm up, say so, then notebooks in and answers out until
    the pipe closes."""
    options = json.loads(options_json)
    limits = Limits.from_dict(options["limits"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the dashboard to handle
    importlib.import_module(PRELOAD[-1])  # warm already when the forkserver preloaded it
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    conn.send_bytes(READY)
    while True:
        try:
            content = conn.recv_bytes()
        except (EOFError, OSError):
            return
        quitting = False
        try:
            converted = convert(content, max_cells=options["max_cells"],
                                max_lines=options["max_lines"], limits=limits)
        except MemoryError:
            del content
            quitting = True  # what failed half-way may hold memory: start afresh
            converted = Converted.failed(
                f"too large to render: it needs more than {size_text(limits.memory_bytes)} "
                "of memory")
        conn.send_bytes(_encode(converted, quitting))
        if quitting:
            return


def _encode(converted: Converted, quitting: bool = False) -> bytes:
    view, part = converted.view_html.encode(), converted.part_html.encode()
    header = {"facts": converted.facts.as_dict(), "hidden": converted.hidden,
              "problem": converted.problem, "part_problem": converted.part_problem,
              "view": len(view), "part": len(part), "quitting": quitting}
    return json.dumps(header).encode() + b"\n" + view + part


def _decode(message: bytes) -> tuple[Converted, bool]:
    """The answer of a render process, and whether that process is quitting."""
    head, _, body = message.partition(b"\n")
    if len(head) > HEADER_BYTES:
        raise ValueError("answer header too long")
    header = json.loads(head)
    view_len, part_len = int(header["view"]), int(header["part"])
    if view_len < 0 or part_len < 0 or view_len + part_len != len(body):
        raise ValueError("answer lengths do not add up")
    facts = {k: header["facts"].get(k) for k in ("cells", "executed", "last_error", "problem")}
    converted = Converted(
        facts=Facts(cells=int(facts["cells"] or 0), executed=int(facts["executed"] or 0),
                    last_error=bool(facts["last_error"]),
                    problem=_text_or_none(facts["problem"])),
        view_html=body[:view_len].decode(), part_html=body[view_len:].decode(),
        hidden=int(header["hidden"]), problem=_text_or_none(header["problem"]),
        part_problem=_text_or_none(header["part_problem"]))
    return converted, header.get("quitting") is True


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class _Slot:
    """One render process and the pipe to it; used by one thread at a time."""

    def __init__(self, options_json: str, limits: Limits, number: int) -> None:
        self.options_json, self.limits, self.number = options_json, limits, number
        self.process: Any = None
        self.conn: Connection | None = None
        # Nothing legitimate is longer than a view and a fragment at their limits.
        self.max_answer = HEADER_BYTES + limits.view_max_bytes + limits.summary_part_bytes

    def convert(self, content: bytes) -> Converted:
        try:
            conn = self._ensure()
        except (EOFError, OSError, TimeoutError) as e:
            self.stop(kill=True)
            log.warning("render process %d did not start: %s", self.number, e)
            return Converted.failed("the render process did not start")
        started = time.monotonic()
        try:
            try:
                conn.send_bytes(content)
            except OSError:  # died between notebooks (killed, OOM): this one is not to blame
                self.stop(kill=True)
                conn = self._ensure()
                started = time.monotonic()
                conn.send_bytes(content)
            if not conn.poll(self.limits.seconds - (time.monotonic() - started)):
                self.stop(kill=True)
                return Converted.failed(f"took too long to render (over "
                                        f"{self.limits.seconds:g} s)")
            converted, quitting = _decode(conn.recv_bytes(self.max_answer))
        except (EOFError, OSError, TimeoutError, ValueError, KeyError, TypeError) as e:
            code = self.process.exitcode if self.process else None
            self.stop(kill=True)
            log.warning("render process %d failed (%s, exit code %s)", self.number,
                        type(e).__name__, code)
            return Converted.failed("the render process stopped while rendering it")
        if quitting:
            self.stop(kill=False)  # after a MemoryError: reap it, the next one starts fresh
        return converted

    def _ensure(self) -> Connection:
        if self.process is None or not self.process.is_alive() or self.conn is None:
            self.stop(kill=True)
            ours, theirs = _CONTEXT.Pipe(duplex=True)
            self.process = _CONTEXT.Process(
                target=serve, args=(theirs, self.options_json), daemon=True,
                name=f"dashboard-render-{self.number}")
            self.process.start()
            theirs.close()
            self.conn = ours
            if not ours.poll(START_SECONDS) or ours.recv_bytes(len(READY)) != READY:
                raise TimeoutError(f"no word from it in {START_SECONDS:g} s")
        return self.conn

    def stop(self, kill: bool) -> None:
        if self.conn is not None:
            self.conn.close()  # a process between notebooks quits on EOF
            self.conn = None
        if self.process is not None:
            if kill:
                self.process.kill()
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
            with contextlib.suppress(ValueError):
                self.process.close()
            self.process = None


class RenderPool:
    """`size` render processes, started when first needed and after one was killed."""

    def __init__(self, options: Mapping[str, Any], *, size: int = RENDER_PROCESSES) -> None:
        if size < 1:
            raise ValueError("a render pool needs at least one process")
        self.size = size
        self.limits = Limits.from_dict(dict(options["limits"]))
        options_json = json.dumps(dict(options))
        # Forked from a process that has nbconvert imported already (milliseconds each).
        _CONTEXT.set_forkserver_preload(PRELOAD)
        self._free: queue.Queue[_Slot] = queue.Queue()
        self._slots = [_Slot(options_json, self.limits, n) for n in range(size)]
        for slot in self._slots:
            self._free.put(slot)
        self._lock = threading.Lock()
        self._closed = False
        self.killed = 0  # processes replaced: over the time or memory limit, or died

    def convert(self, content: bytes | str | Mapping[str, Any]) -> Converted:
        """Render one notebook in a free process (waiting for one); never raises for what
        the notebook contains."""
        if isinstance(content, Mapping):
            content = json.dumps(content)
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) \
            else bytes(content)
        slot = self._free.get()
        try:
            if self._closed:
                return Converted.failed("the dashboard is stopping")
            converted = slot.convert(data)
            if slot.process is None:
                with self._lock:
                    self.killed += 1
            return converted
        finally:
            self._free.put(slot)

    def pids(self) -> list[int]:
        """Process ids of the render processes running now (for tests and /health)."""
        return [s.process.pid for s in self._slots if s.process and s.process.is_alive()]

    def close(self) -> None:
        """Stop every process; a convert still running ends first (at most `seconds`).
        Later converts answer with a placeholder at once."""
        self._closed = True
        taken = [self._free.get(timeout=self.limits.seconds + 10) for _ in self._slots]
        for slot in taken:
            slot.stop(kill=False)
            self._free.put(slot)
