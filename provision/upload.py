"""Which files of this checkout go to the node, and with which modes.

The node runs exactly what the instructor has (including uncommitted edits),
so files are copied rather than cloned. What is never copied: version control
and virtualenvs, caches, participants' data under home/ and tmp/, and the
local participant list (it holds passwords) unless --users names a file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ProvisionError

TOP_FILES = (
    "create-node.py",
    "setup-node.sh",
    "docker-compose.yml",
    "Dockerfile",
    ".dockerignore",
    "Readme.md",
)
TOP_DIRS = ("etc", "services", "provision", "benchmarks")
# Data directories exist on the node with only their explanatory Readme.
DATA_DIRS = ("home", "tmp")
REQUIRED = ("setup-node.sh",)
USERS_REMOTE = "etc/jupyterhub/users.txt"

_SKIP_DIRS = frozenset({
    ".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache",
    "node_modules", ".ipynb_checkpoints",
})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", ".swo", "~")
_SKIP_NAMES = frozenset({".DS_Store"})


@dataclass(frozen=True)
class UploadItem:
    remote: str  # path relative to the remote directory, with "/" separators
    local: Path | None  # None for a directory to create
    mode: int

    @property
    def is_dir(self) -> bool:
        return self.local is None


def _is_local_users_file(rel: str) -> bool:
    # users.txt and its backups (users.txt.bak, users.txt.orig) hold passwords;
    # only the documented sample travels.
    return rel == USERS_REMOTE or (
        rel.startswith(USERS_REMOTE + ".") and rel != USERS_REMOTE + ".sample"
    )


def _skipped(name: str) -> bool:
    return name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES)


def _file_mode(path: Path) -> int:
    executable = path.stat().st_mode & stat.S_IXUSR
    return 0o755 if executable else 0o644


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _walk(root: Path, top: str) -> list[UploadItem]:
    items = [UploadItem(top, None, 0o755)]
    for dirpath, dirnames, filenames in os.walk(root / top):
        here = Path(dirpath)
        # Symlinked directories are not followed: they could point anywhere.
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not (here / d).is_symlink()
        )
        for d in dirnames:
            items.append(UploadItem((here / d).relative_to(root).as_posix(), None, 0o755))
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if _skipped(name) or _is_local_users_file(rel):
                continue
            if not path.is_file() or not _inside(root, path):
                continue  # sockets, dangling links, links leaving the checkout
            items.append(UploadItem(rel, path, _file_mode(path)))
    return items


def select_files(root: Path, users_file: Path | None = None) -> list[UploadItem]:
    """Everything to upload, directories before the files inside them."""
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise ProvisionError(f"{root} is not a complete checkout: {missing[0]} is missing")
    items: list[UploadItem] = []
    for name in TOP_FILES:
        path = root / name
        if path.is_file():
            items.append(UploadItem(name, path, _file_mode(path)))
    for top in TOP_DIRS:
        if (root / top).is_dir() and not (root / top).is_symlink():
            items.extend(_walk(root, top))
    for top in DATA_DIRS:
        items.append(UploadItem(top, None, 0o755))
        readme = root / top / "Readme.txt"
        if readme.is_file():
            items.append(UploadItem(f"{top}/Readme.txt", readme, 0o644))
    if users_file is not None:
        if not users_file.is_file():
            raise ProvisionError(f"--users {users_file}: no such file")
        # The parent directory comes from etc/ above; make sure it exists even
        # in a checkout without etc/jupyterhub.
        for parent in ("etc", "etc/jupyterhub"):
            if not any(item.remote == parent for item in items):
                items.append(UploadItem(parent, None, 0o755))
        items.append(UploadItem(USERS_REMOTE, users_file, 0o600))
    return items
