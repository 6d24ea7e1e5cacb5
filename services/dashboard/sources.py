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
from collections.abc import Iterator, Mapping
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
        except (SourceError, ValueError):
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
                    budget = [self.max_folders]
                    for path, mtime in self._walk(home, "", 0, budget):
                        yield user, path, mtime
                    if budget[0] <= 0:
                        log.warning("%s has more than %d folders; listed only those",
                                    user, self.max_folders)
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
            fd = os.open(self.home_root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except OSError as e:
            raise SourceError(f"cannot open the homes ({e.strerror})") from None
        try:
            for part in parts[:-1]:
                try:
                    child = os.open(part, _FOLDER, dir_fd=fd)
                except OSError as e:
                    raise _error(user, path, e) from None
                os.close(fd)
                fd = child
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def _walk(self, folder: int, prefix: str, depth: int,
              budget: list[int]) -> Iterator[tuple[str, int]]:
        """(path, mtime_ns) of every notebook below `folder`, depth first, in name order.
        Holds one fd per level (at most `max_depth`), never one per pending folder."""
        budget[0] -= 1
        for name in sorted(_entries(folder)):
            if name.startswith("."):
                continue
            try:
                info = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except OSError:
                continue  # gone since it was listed
            path = f"{prefix}{name}"
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 >= self.max_depth or budget[0] <= 0:
                    continue
                try:
                    child = os.open(name, _FOLDER, dir_fd=folder)
                except OSError:
                    continue  # swapped for a link or removed since the stat
                try:
                    yield from self._walk(child, f"{path}/", depth + 1, budget)
                finally:
                    os.close(child)
            elif (not stat.S_ISLNK(info.st_mode) and name.endswith(".ipynb")
                  and _check(safe_path, path) is not None):
                yield path, info.st_mtime_ns


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
