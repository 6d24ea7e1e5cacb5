"""The render queue: saves go in from request threads, one thread renders them.

    source = FileSystemSource("/home")
    worker = RenderWorker(Renderer(output_dir), source).start()   # catches up first
    worker.enqueue("alice", "day1/intro.ipynb")                   # returns at once
    worker.stats()                                                # for /health
    worker.stop()

Coalescing: a (user, path) already waiting is not queued twice (the render reads the file
when it runs, so it shows the latest save). A (user, path) saved again while it renders
is queued again. After a participant's view is rendered the summary of that path is
"dirty"; it is rewritten as soon as no other save of the same path is waiting, or after
`summary_lag` seconds at the latest, so a burst of saves of one notebook shares summary
writes. Listeners get a `Change` after every view and summary written.

Notebooks are read through a `NotebookSource`; `FileSystemSource` reads
``<home_root>/<user>/<path>``. Another source (the Jupyter contents API) only needs
`read`, `mtime_ns` and `list`.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .render import Renderer, is_hidden, safe_path, safe_user

log = logging.getLogger("dashboard.worker")


class SourceError(Exception):
    """The notebook exists but cannot be read; the message says why (shown to instructors)."""


class SourceUnavailable(SourceError):
    """Cannot be read right now (e.g. the participant's server is stopped): the last render
    stays as it is until the next save or rescan."""


class NotebookMissing(SourceError):
    """There is no such notebook (any more)."""


@dataclass(frozen=True)
class SourceNotebook:
    content: bytes | str | Mapping[str, Any]  # the .ipynb JSON, or its parsed model
    mtime_ns: int


class NotebookSource(Protocol):
    def read(self, user: str, path: str) -> SourceNotebook:
        """The notebook's content and mtime; NotebookMissing or SourceError if impossible."""
        ...

    def mtime_ns(self, user: str, path: str) -> int | None:
        """The notebook's mtime, or None if it does not exist."""
        ...

    def list(self) -> Iterator[tuple[str, str, int]]:
        """Every (user, path, mtime_ns) there is, hidden folders and checkpoints skipped."""
        ...


class FileSystemSource:
    """Notebooks in the participants' homes: ``<home_root>/<user>/<path>``."""

    def __init__(self, home_root: str | Path, *, max_bytes: int = 64 * 1024 * 1024,
                 max_depth: int = 12) -> None:
        self.home_root = Path(home_root)
        self.max_bytes, self.max_depth = max_bytes, max_depth

    def _file(self, user: str, path: str) -> tuple[Path, Path]:
        home = self.home_root / safe_user(user)
        return home, home / safe_path(path)

    def read(self, user: str, path: str) -> SourceNotebook:
        home, file = self._file(user, path)
        try:
            real = file.resolve(strict=True)
            if not real.is_relative_to(home.resolve(strict=True)):
                raise SourceError("the notebook is a link to a file outside the home")
            # O_NONBLOCK: a participant's FIFO named *.ipynb must not hang the worker.
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise NotebookMissing(f"{user}/{path} does not exist") from None
        except OSError as e:
            raise SourceError(f"cannot open the notebook ({e.strerror})") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SourceError("not a regular file")
            if info.st_size > self.max_bytes:
                raise SourceError(f"too large to show ({info.st_size // 2**20} MiB)")
            return SourceNotebook(content=f.read(self.max_bytes + 1), mtime_ns=info.st_mtime_ns)

    def mtime_ns(self, user: str, path: str) -> int | None:
        try:
            return self._file(user, path)[1].stat().st_mtime_ns
        except (OSError, ValueError):
            return None

    def list(self) -> Iterator[tuple[str, str, int]]:
        try:
            homes = sorted(os.scandir(self.home_root), key=lambda e: e.name)
        except OSError as e:
            log.warning("cannot list %s: %s", self.home_root, e)
            return
        for home in homes:
            if home.name.startswith(".") or not home.is_dir(follow_symlinks=False):
                continue
            for top, dirs, files in os.walk(home.path):  # never follows links to folders
                rel = os.path.relpath(top, home.path)
                depth = 0 if rel == "." else rel.count(os.sep) + 1
                dirs[:] = [] if depth >= self.max_depth else sorted(
                    d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(".ipynb") and not name.startswith("."):
                        path = name if rel == "." else f"{Path(rel).as_posix()}/{name}"
                        try:
                            mtime = os.stat(os.path.join(top, name)).st_mtime_ns
                        except OSError:
                            continue
                        yield home.name, path, mtime


@dataclass(frozen=True)
class Change:
    """Something on disk changed: a participant's view, or a notebook name's summary."""

    kind: str  # "view" or "summary"
    path: str
    user: str | None  # for a view
    version: int  # the renderer's global version after the change


Listener = Callable[[Change], None]


class RenderWorker:
    """One background thread rendering what `enqueue` asks for, coalescing repeats."""

    def __init__(self, renderer: Renderer, source: NotebookSource, *,
                 summary_lag: float = 1.0, rescan_interval: float | None = None,
                 listeners: list[Listener] | None = None) -> None:
        self.renderer, self.source = renderer, source
        self.summary_lag = summary_lag
        # Also catch up every so often when idle: notebooks changed without a save event
        # (a terminal, git) or deleted show up without a restart.
        self.rescan_interval = rescan_interval
        self._listeners = list(listeners or [])
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], float] = {}  # ordered: first come, first served
        self._pending_paths: Counter[str] = Counter()
        self._dirty: dict[str, float] = {}  # path -> when its summary became stale
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.renders = self.summaries = self.coalesced = self.errors = 0
        self.last_render: float | None = None  # wall-clock time the last job finished
        self.last_duration: float | None = None  # seconds the last job took

    # -- control ------------------------------------------------------------------------
    def start(self, catch_up: bool = True) -> RenderWorker:
        """Start the thread; with `catch_up`, it first queues whatever is missing or stale."""
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("the render worker was already started")
            self._busy = catch_up  # so wait_idle waits for the catch-up too
            self._thread = threading.Thread(target=self._run, args=(catch_up,),
                                            name="dashboard-render", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the job in hand and stop; what is still queued is left to catch_up."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- called from request threads ----------------------------------------------------
    def enqueue(self, user: str, path: str) -> bool:
        """Queue a render of `user`'s `path`; False if ignored (hidden, or stopping)."""
        safe_user(user)
        safe_path(path)
        if is_hidden(path):
            return False
        with self._cond:
            if self._stopping:
                return False
            if (user, path) in self._pending:
                self.coalesced += 1
            else:
                self._pending[(user, path)] = time.monotonic()
                self._pending_paths[path] += 1
                self._cond.notify_all()
        return True

    def request_summary(self, path: str) -> None:
        """Rewrite the summary of `path` (e.g. it is missing) without rendering a view."""
        safe_path(path)
        with self._cond:
            self._dirty.setdefault(path, time.monotonic())
            self._cond.notify_all()

    @property
    def queue_length(self) -> int:
        """Views waiting plus summaries waiting."""
        with self._cond:
            return len(self._pending) + len(self._dirty)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or rendering; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._pending or self._dirty or self._busy), timeout)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"queue": len(self._pending) + len(self._dirty), "busy": self._busy,
                    "renders": self.renders, "summaries": self.summaries,
                    "coalesced": self.coalesced, "errors": self.errors,
                    "last_render": self.last_render, "last_duration": self.last_duration,
                    "version": self.renderer.version,
                    "running": bool(self._thread and self._thread.is_alive())}

    # -- catching up --------------------------------------------------------------------
    def catch_up(self) -> int:
        """Queue every notebook whose view or summary fragment is missing or older than it,
        write missing summaries, drop what was rendered for notebooks now gone.
        Returns how many notebooks were queued."""
        queued = 0
        for user, path, mtime_ns in self.source.list():
            try:
                view = self.renderer.view_mtime_ns(user, path)
                part = self.renderer.part_mtime_ns(user, path)
            except ValueError:
                continue  # a name we would never render
            if view is None or part is None or view < mtime_ns or part < mtime_ns:
                queued += self.enqueue(user, path)
            elif not self.renderer.summary_file(path).exists():
                self.request_summary(path)
        for user, path in list(self.renderer.parts()):
            if self.source.mtime_ns(user, path) is None:
                self.renderer.forget(user, path)
                self.request_summary(path)
        return queued

    # -- the thread ---------------------------------------------------------------------
    def _run(self, catch_up: bool) -> None:
        if catch_up:
            self._scan()
        interval = self.rescan_interval
        next_scan = time.monotonic() + interval if interval else None
        while True:
            with self._cond:
                job = self._take()
                while job is None and not self._stopping:
                    wait = None if next_scan is None else next_scan - time.monotonic()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                    job = self._take()
                if self._stopping:
                    return
                self._busy = True
            if job is None:  # idle and a rescan is due
                self._scan()
                next_scan = time.monotonic() + interval if interval else None
                continue
            started = time.perf_counter()
            try:
                change = self._do(*job)
            except Exception:
                log.exception("render job %s failed", job)
                change = None
                with self._cond:
                    self.errors += 1
            with self._cond:
                self._busy = False
                self.last_render = time.time()
                self.last_duration = time.perf_counter() - started
                self._cond.notify_all()
            if change is not None:
                self._notify(change)

    def _scan(self) -> None:
        try:
            queued = self.catch_up()
            if queued:
                log.info("catching up: %d notebooks to render", queued)
        except Exception:
            log.exception("catching up failed")
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def _take(self) -> tuple[str, str, str | None] | None:
        """The next job, called with the lock held: a due summary first, else a view."""
        now = time.monotonic()
        for path, since in self._dirty.items():
            if not self._pending_paths[path] or now - since >= self.summary_lag:
                del self._dirty[path]
                return "summary", path, None
        if self._pending:
            user, path = next(iter(self._pending))
            del self._pending[(user, path)]
            self._pending_paths[path] -= 1
            if not self._pending_paths[path]:
                del self._pending_paths[path]
            return "view", path, user
        return None

    def _do(self, kind: str, path: str, user: str | None) -> Change:
        if kind == "summary":
            self.renderer.write_summary(path)
            with self._cond:
                self.summaries += 1
            return Change("summary", path, None, self.renderer.version)
        assert user is not None
        try:
            notebook = self.source.read(user, path)
        except NotebookMissing:
            self.renderer.forget(user, path)
        except SourceUnavailable as e:
            log.info("keeping the last view of %s's %s: %s", user, path, e)
            return Change("view", path, user, self.renderer.version)
        except SourceError as e:
            self.renderer.render_problem(user, path, str(e), time.time_ns())
        else:
            self.renderer.render(user, path, notebook.content, notebook.mtime_ns)
        with self._cond:
            self.renders += 1
            self._dirty.setdefault(path, time.monotonic())
        return Change("view", path, user, self.renderer.version)

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("render listener %r failed", listener)
