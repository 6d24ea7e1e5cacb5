"""How full is the machine? Host memory in use and the number of running servers.

Shown on the dashboard's health endpoint so an instructor (or a monitor) sees trouble
coming before the class does. Memory comes from /proc/meminfo, which inside the container
describes the whole host; running servers come from the hub's REST API, asked with the
dashboard's own token (its role allows listing users and reading their servers).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from workshop.hubapi import HubAPI, HubAPIError

MB = 1024 * 1024


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> dict[str, Any]:
    fields = {}
    for line in meminfo.read_text().splitlines():
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) * 1024  # kB
    total, available = fields["MemTotal"], fields.get("MemAvailable", fields["MemFree"])
    used = total - available
    return {"total_mb": total // MB, "used_mb": used // MB,
            "used_percent": round(100 * used / total, 1)}


class RunningServers:
    """The hub's count of running servers, asked at most every `max_age` seconds."""

    def __init__(self, hub: HubAPI | None, max_age: float = 5.0) -> None:
        self.hub = hub
        self.max_age = max_age
        self._lock = threading.Lock()
        self._value: int | None = None
        self._at = 0.0

    def count(self) -> int | None:
        if self.hub is None:
            return None
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                try:
                    active = self.hub.paginate("/users?state=active")
                    self._value = sum(len(u.get("servers") or {}) for u in active)
                except (HubAPIError, OSError):
                    self._value = None  # unknown, said as null: never a failing health
                self._at = time.monotonic()
            return self._value
