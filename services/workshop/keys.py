"""Secrets the appliance makes for itself and keeps across restarts (proxy token, cookie
secrets): random, written once with mode 0600, read back on every start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def persistent_secret(path: str | os.PathLike[str]) -> str:
    """The secret in `path` (64 hex characters), created there on first use."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists() and not _is_hex_secret(path.read_bytes()):
        # Older versions kept some secrets as raw bytes: replace it (a dashboard cookie
        # secret only; its sessions start again at the next login).
        path.unlink()
    try:
        # O_EXCL: two processes starting at once never both write, never overwrite.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    path.chmod(0o600)  # a copy restored by hand must not stay readable
    return path.read_text().strip()


def _is_hex_secret(data: bytes) -> bool:
    text = data.strip()
    return len(text) >= 32 and all(c in b"0123456789abcdef" for c in text)
