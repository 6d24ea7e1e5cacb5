"""users-sync's status file: what it applied, held back or could not do, for the dashboard.

users-sync is a separate process whose problems would otherwise only be in the hub log. It
writes a small JSON file after every sync (`/srv/hub/state/users-sync.json`, or
`WORKSHOP_USERS_SYNC_STATUS`) and the dashboard's Participants page shows it: a users.txt
held back by the mass-removal guard, accounts that could not be created, the last error.
The file holds no secrets. The last good users.txt (with passwords, 0600) is kept next to
it, as `users-sync.last-good.txt`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .roster import replace_file

DEFAULT_STATUS_FILE = Path("/srv/hub/state/users-sync.json")
ENV = "WORKSHOP_USERS_SYNC_STATUS"


def status_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV) or DEFAULT_STATUS_FILE)


def last_good_path(status: str | os.PathLike[str]) -> Path:
    status = Path(status)
    return status.with_name(f"{status.stem}.last-good.txt")


def write_status(path: str | os.PathLike[str], status: Mapping[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = json.dumps(status, indent=1, sort_keys=True).encode("utf-8")
    replace_file(path, data, mode=0o600)


def read_status(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last status users-sync wrote; None when there is none (or it is unreadable)."""
    try:
        status = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None
