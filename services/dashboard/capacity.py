"""How full is the machine? Host memory in use, for the dashboard's health endpoint.

Memory comes from /proc/meminfo, which inside the container describes the whole host, so
an instructor (or a monitor) sees trouble coming before the class does. The number of
running servers comes from the hub (servers.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
