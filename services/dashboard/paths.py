"""Names participants choose, checked before the dashboard uses them for anything.

A user name is one folder name; a notebook path is relative to its home. Neither is ever
used as a file name below the output dir as it is (render.py hashes paths): these checks
keep them from leaving a home or a folder, not from colliding.
"""

from __future__ import annotations

from pathlib import PurePosixPath

MAX_USER = 64  # JupyterHub's own names are shorter; users.txt allows no more
MAX_PATH = 1024  # characters of a notebook path relative to the home


def safe_user(user: str) -> str:
    """A user name usable as one directory name; ValueError otherwise."""
    if (not isinstance(user, str) or not user or len(user) > MAX_USER or user.startswith(".")
            or any(c in user for c in "/\\\x00")):
        raise ValueError(f"invalid user name {user!r}")
    return user


def safe_path(path: str) -> str:
    """A notebook path relative to a home, e.g. ``day1/intro.ipynb``; ValueError otherwise."""
    if (not isinstance(path, str) or "\\" in path or "\x00" in path
            or len(path) > MAX_PATH):
        raise ValueError(f"invalid notebook path {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or not parts[-1].endswith(".ipynb"):
        raise ValueError(f"not a notebook path relative to a home: {path!r}")
    return path


def is_hidden(path: str) -> bool:
    """Hidden files and folders (and so .ipynb_checkpoints) are never rendered."""
    return any(p.startswith(".") for p in PurePosixPath(path).parts)
