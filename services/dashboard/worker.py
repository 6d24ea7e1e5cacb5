"""The render queue: saves go in from request threads, render threads take them in turns.

    source = FileSystemSource("/home")
    worker = RenderWorker(Renderer(output_dir), source).start()   # catches up first
    worker.enqueue("alice", "day1/intro.ipynb")                   # returns at once
    worker.stats()                                                # for /health
    worker.stop()

Fairness: each participant has a line of their own, and the lines are served in turn
(round robin), not in the order saves arrived: a participant who saves fifty notebooks
waits behind nobody else's one. A participant has at most one notebook rendering at a
time, so their slow notebooks hold at most one of the render processes.

Isolation: a notebook is read here (sources.py) and turned into HTML in a render process
(renderpool.py) with a time and a memory limit; one over a limit becomes a placeholder
that says which, while the other threads keep rendering everybody else's.

Coalescing: a (user, path) already waiting is not queued twice (the render reads the file
when it runs, so it shows the latest save). A (user, path) saved again while it renders
is queued again. After a participant's view is rendered the summary of that path is
"dirty"; it is rewritten as soon as no other save of the same path is waiting, or after
`summary_lag` seconds at the latest, so a burst of saves of one notebook shares summary
writes. A save of a notebook that does not exist changes nothing: no summary, no column.
Listeners get a `Change` after every view and summary written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .limits import RENDER_PROCESSES
from .paths import is_hidden, safe_path, safe_user
from .render import Renderer
from .renderpool import RenderPool
from .sources import NotebookMissing, NotebookSource, SourceError, SourceUnavailable

log = logging.getLogger("dashboard.worker")


@dataclass(frozen=True)
class Change:
    """Something on disk changed: a participant's view, or a notebook name's summary."""

    kind: str  # "view" or "summary"
    path: str
    user: str | None  # for a view
    version: int  # the renderer's global version after the change


Listener = Callable[[Change], None]
Job = tuple[str, str, str | None]  # ("view", path, user) or ("summary", path, None)


class RenderWorker:
    """Render threads (one per render process) taking what `enqueue` asks for in turns."""

    def __init__(self, renderer: Renderer, source: NotebookSource, *,
                 summary_lag: float = 1.0, rescan_interval: float | None = None,
                 listeners: list[Listener] | None = None,
                 processes: int = RENDER_PROCESSES, pool: RenderPool | None = None) -> None:
        self.renderer, self.source = renderer, source
        self.pool = pool or RenderPool(renderer.convert_options, size=processes)
        self.summary_lag = summary_lag
        # Also catch up every so often when idle: notebooks changed without a save event
        # (a terminal, git) or deleted show up without a restart.
        self.rescan_interval = rescan_interval
        self._listeners = list(listeners or [])
        self._cond = threading.Condition()
        self._lines: dict[str, dict[str, float]] = {}  # user -> {path: queued at}, in order
        self._turns: deque[str] = deque()  # users with a line, in the order they are served
        self._pending_paths: Counter[str] = Counter()
        self._rendering: set[str] = set()  # users with a view in hand
        self._summarizing: set[str] = set()  # paths whose summary is being written
        self._dirty: dict[str, float] = {}  # path -> when its summary became stale
        self._active = 0  # jobs (and scans) in hand
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.renders = self.summaries = self.coalesced = self.errors = 0
        self.last_render: float | None = None  # wall-clock time the last job finished
        self.last_duration: float | None = None  # seconds the last job took

    # -- control ------------------------------------------------------------------------
    def start(self, catch_up: bool = True) -> RenderWorker:
        """Start the threads; with `catch_up`, the first queues whatever is missing or
        stale before it renders."""
        with self._cond:
            if self._threads:
                raise RuntimeError("the render worker was already started")
            if catch_up:
                self._active += 1  # so wait_idle waits for the catch-up too
            self._threads = [
                threading.Thread(target=self._run, args=(n == 0, catch_up and n == 0),
                                 name=f"dashboard-render-{n}", daemon=True)
                for n in range(self.pool.size)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the jobs in hand and stop; what is still queued is left to catch_up."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self.pool.close()

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
            line = self._lines.get(user)
            if line is not None and path in line:
                self.coalesced += 1
                return True
            if line is None:
                line = self._lines[user] = {}
                self._turns.append(user)
            line[path] = time.monotonic()
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
            return sum(map(len, self._lines.values())) + len(self._dirty)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or rendering; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._lines or self._dirty or self._active), timeout)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"queue": sum(map(len, self._lines.values())) + len(self._dirty),
                    "busy": self._active > 0, "renders": self.renders,
                    "summaries": self.summaries, "coalesced": self.coalesced,
                    "errors": self.errors, "killed": self.pool.killed,
                    "processes": self.pool.size, "last_render": self.last_render,
                    "last_duration": self.last_duration, "version": self.renderer.version,
                    "running": any(t.is_alive() for t in self._threads)}

    # -- catching up --------------------------------------------------------------------
    def catch_up(self) -> int:
        """Queue every notebook whose view or summary fragment is missing or older than it,
        write missing summaries, drop what was rendered for notebooks now gone and the
        summaries nobody has any more. Returns how many notebooks were queued."""
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
            if self.source.mtime_ns(user, path) is None and self.renderer.forget(user, path):
                self.request_summary(path)
        had_parts = {path for _, path in self.renderer.parts()}
        for path in self.renderer.paths():
            if path not in had_parts:
                self.request_summary(path)  # a column nobody has: removed
        for path in self.renderer.stale_summaries():
            self.request_summary(path)  # behind its fragments (killed before writing it)
        return queued

    # -- the threads --------------------------------------------------------------------
    def _run(self, scans: bool, catch_up: bool) -> None:
        if catch_up:
            self._scan()
        interval = self.rescan_interval if scans else None
        next_scan = time.monotonic() + interval if interval else None
        while True:
            with self._cond:
                job = self._take()
                while job is None and not self._stopping:
                    now = time.monotonic()
                    if next_scan is not None and next_scan <= now:
                        break
                    self._cond.wait(self._wait_time(now, next_scan))
                    job = self._take()
                if self._stopping:
                    if job is not None:
                        self._release(job)
                    return
                self._active += 1
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
                self._release(job)
                self._active -= 1
                self.last_render = time.time()
                self.last_duration = time.perf_counter() - started
                self._cond.notify_all()
            if change is not None:
                self._notify(change)

    def _wait_time(self, now: float, next_scan: float | None) -> float | None:
        """Until the next rescan or the next summary that its lag makes due."""
        due = [since + self.summary_lag for path, since in self._dirty.items()
               if path not in self._summarizing]  # that one's end wakes us anyway
        if next_scan is not None:
            due.append(next_scan)
        return max(0.0, min(due) - now) + 0.001 if due else None

    def _scan(self) -> None:
        """Catch up; the caller counted it in `_active`."""
        try:
            queued = self.catch_up()
            if queued:
                log.info("catching up: %d notebooks to render", queued)
        except Exception:
            log.exception("catching up failed")
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def _take(self) -> Job | None:
        """The next job, called with the lock held: a due summary first, else the next
        participant in turn who has nothing rendering."""
        now = time.monotonic()
        for path, since in self._dirty.items():
            if path in self._summarizing:
                continue
            if not self._pending_paths[path] or now - since >= self.summary_lag:
                del self._dirty[path]
                self._summarizing.add(path)
                return "summary", path, None
        for _ in range(len(self._turns)):
            user = self._turns.popleft()
            if user in self._rendering:
                self._turns.append(user)  # one notebook at a time each: next participant
                continue
            line = self._lines[user]
            path = next(iter(line))
            del line[path]
            if line:
                self._turns.append(user)
            else:
                del self._lines[user]
            self._pending_paths[path] -= 1
            if not self._pending_paths[path]:
                del self._pending_paths[path]
            self._rendering.add(user)
            return "view", path, user
        return None

    def _release(self, job: Job) -> None:
        kind, path, user = job
        if kind == "summary":
            self._summarizing.discard(path)
        else:
            self._rendering.discard(user or "")

    def _do(self, kind: str, path: str, user: str | None) -> Change | None:
        if kind == "summary":
            self.renderer.write_summary(path)
            with self._cond:
                self.summaries += 1
            return Change("summary", path, None, self.renderer.version)
        assert user is not None
        changed = True
        try:
            notebook = self.source.read(user, path)
        except NotebookMissing:
            # Only a notebook that was shown changes anything: a save event for a path
            # nobody has never makes a column.
            changed = self.renderer.forget(user, path)
        except SourceUnavailable as e:
            log.info("keeping the last view of %s's %s: %s", user, path, e)
            return None
        except SourceError as e:
            self.renderer.render_problem(user, path, str(e), time.time_ns())
        else:
            converted = self.pool.convert(notebook.content)
            self.renderer.store(user, path, converted, notebook.mtime_ns)
        with self._cond:
            self.renders += 1
            if changed:
                self._dirty.setdefault(path, time.monotonic())
        return Change("view", path, user, self.renderer.version) if changed else None

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("render listener failed")
