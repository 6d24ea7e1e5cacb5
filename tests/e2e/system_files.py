"""Files of the machine a test changes on purpose (nginx, /etc/hosts...), put back after.

`snapshot(paths)` records each path as it is (a file's bytes, a symbolic link's target,
or absent); `restore(saved)` makes each path exactly that again. `pid_of(pidfile)` tells whether a
daemon a test may have to stop (nginx, cron) runs.
"""

from __future__ import annotations

import os
from pathlib import Path

Saved = dict[Path, tuple[str, bytes | str] | None]


def snapshot(paths: list[Path]) -> Saved:
    saved: Saved = {}
    for path in paths:
        if path.is_symlink():
            saved[path] = ("link", os.readlink(path))
        elif path.exists():
            saved[path] = ("file", path.read_bytes())
        else:
            saved[path] = None
    return saved


def restore(saved: Saved) -> None:
    for path, was in saved.items():
        if was == snapshot([path])[path]:
            continue
        if path.is_symlink() or (path.exists() and was is None):
            path.unlink()
        if was is None:
            continue
        kind, content = was
        if kind == "link":
            path.unlink(missing_ok=True)
            path.symlink_to(content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)  # type: ignore[arg-type]


def pid_of(pidfile: str) -> int | None:
    """The live process a pid file names, or None."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None
