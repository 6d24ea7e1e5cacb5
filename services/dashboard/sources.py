"""Where the dashboard reads participants' notebooks: the one place that knows how.

    source = FileSystemSource("/home")
    notebook = source.read("alice", "day1/intro.ipynb")   # SourceNotebook(content, mtime_ns)
    source.mtime_ns("alice", "day1/intro.ipynb")          # None: not there
    for user, path, mtime_ns in source.list(): ...

A `NotebookSource` has `read`, `mtime_ns` and `list`; `FileSystemSource` reads the homes on
disk, `contents_source.ContentsSource` asks participants' own Jupyter servers.

Participants own their homes and everything in them, and may change them while the
dashboard (root) reads: swap a folder for a symlink between two checks, plant a FIFO.
`FileSystemSource` therefore never resolves a path and then opens it. It walks from the
home's own file descriptor one component at a time (``openat`` with ``O_NOFOLLOW``), so
each step opens exactly the folder entry it checked and a symlink anywhere on the way is
refused, not followed. Links are not part of a home as the dashboard sees it: a notebook
that is, or lies behind, a symlink does not exist for it (`NotebookMissing`; not listed).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .limits import NOTEBOOK_MAX_BYTES, size_text
from .paths import safe_path, safe_user

log = logging.getLogger("dashboard.sources")


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


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# One folder, never through a link: O_NOFOLLOW refuses a link as the component opened,
# and every open below names a single component.
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a participant's FIFO named *.ipynb must not hang the reader.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # ELOOP: a link, not followed


class FileSystemSource:
    """Notebooks in the participants' homes: ``<home_root>/<user>/<path>``, links not
    followed. `max_folders` bounds the folders listed per home, `max_depth` how deep."""

    def __init__(self, home_root: str | Path, *, max_bytes: int = NOTEBOOK_MAX_BYTES,
                 max_depth: int = 12, max_folders: int = 2000) -> None:
        self.home_root = Path(home_root)
        self.max_bytes, self.max_depth, self.max_folders = max_bytes, max_depth, max_folders

    # -- NotebookSource ---------------------------------------------------------------
    def read(self, user: str, path: str) -> SourceNotebook:
        with self._folder_of(user, path) as (folder, name):
            try:
                fd = os.open(name, _FILE, dir_fd=folder)
            except OSError as e:
                raise _error(user, path, e) from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SourceError("not a regular file")
            if info.st_size > self.max_bytes:
                raise SourceError(f"too large to show ({size_text(info.st_size)}; "
                                  f"the limit is {size_text(self.max_bytes)})")
            data = f.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:  # grew while we read it
            raise SourceError(f"too large to show (over {size_text(self.max_bytes)})")
        return SourceNotebook(content=data, mtime_ns=info.st_mtime_ns)

    def mtime_ns(self, user: str, path: str) -> int | None:
        try:
            with self._folder_of(user, path) as (folder, name):
                info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except (SourceError, OSError, ValueError):
            return None
        return None if stat.S_ISLNK(info.st_mode) or stat.S_ISDIR(info.st_mode) \
            else info.st_mtime_ns

    def list(self) -> Iterator[tuple[str, str, int]]:
        try:
            root = os.open(self.home_root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except OSError as e:
            log.warning("cannot list %s: %s", self.home_root, e)
            return
        try:
            for user in sorted(_entries(root)):
                if user.startswith(".") or _check(safe_user, user) is None:
                    continue
                try:
                    home = os.open(user, _FOLDER, dir_fd=root)
                except OSError:
                    continue  # not a folder (or a link): nobody's home
                try:
                    for path, mtime in self._walk(user, home):
                        yield user, path, mtime
                finally:
                    os.close(home)
        finally:
            os.close(root)

    # -- walking ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _folder_of(self, user: str, path: str) -> Iterator[tuple[int, str]]:
        """An fd of the folder holding `path` in `user`'s home, reached without following
        any link, and the notebook's name in it; NotebookMissing if there is no way."""
        parts = [safe_user(user), *safe_path(path).split("/")]
        try:
            root = os.open(self.home_root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except OSError as e:
            raise SourceError(f"cannot open the homes ({e.strerror})") from None
        try:
            fd = _open_below(root, parts[:-1])
        except OSError as e:
            raise _error(user, path, e) from None
        finally:
            os.close(root)
        try:
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def _walk(self, user: str, home: int) -> Iterator[tuple[str, int]]:
        """(path, mtime_ns) of every notebook in the home open as `home`, at most
        `max_depth` folders deep. Breadth first, so a deep tree (a data set, a cloned
        repository) cannot use up `max_folders` before the lesson's folders are seen.
        Each folder is opened afresh from the home, component by component, so at most
        two descriptors are open at a time."""
        pending: deque[tuple[str, ...]] = deque([()])
        listed = 0
        while pending:
            if listed >= self.max_folders:
                log.warning("%s has more than %d folders; listed only those", user,
                            self.max_folders)
                return
            parts = pending.popleft()
            listed += 1
            try:
                folder = _open_below(home, parts)
            except OSError:
                continue  # removed, or swapped for a link, since it was seen
            try:
                for name in sorted(_entries(folder)):
                    if name.startswith("."):
                        continue
                    try:
                        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
                    except OSError:
                        continue  # gone since it was listed
                    path = "/".join((*parts, name))
                    if stat.S_ISDIR(info.st_mode):
                        if len(parts) < self.max_depth:
                            pending.append((*parts, name))
                    elif (not stat.S_ISLNK(info.st_mode) and name.endswith(".ipynb")
                          and _check(safe_path, path) is not None):
                        yield path, info.st_mtime_ns
            finally:
                os.close(folder)


def _open_below(fd: int, parts: Sequence[str]) -> int:
    """A new fd of the folder `parts` below the folder open as `fd`, one component at a
    time and never through a link (OSError otherwise)."""
    current = os.dup(fd)
    try:
        for part in parts:
            child = os.open(part, _FOLDER, dir_fd=current)
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        raise
    return current


def _entries(folder: int) -> list[str]:
    """Names in the folder open as `folder` (scandir works on a duplicate and rewinds it:
    the fd stays open and can be listed again)."""
    try:
        with os.scandir(folder) as it:
            return [entry.name for entry in it]
    except OSError:
        return []


def _error(user: str, path: str, e: OSError) -> SourceError:
    if e.errno in _NOT_THERE:
        why = " (a link: links are not followed)" if e.errno == errno.ELOOP else ""
        return NotebookMissing(f"{user}/{path} does not exist{why}")
    return SourceError(f"cannot open the notebook ({e.strerror})")


def _check(check: Any, value: str) -> str | None:
    try:
        return check(value)
    except ValueError:
        return None
