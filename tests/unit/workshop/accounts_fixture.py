"""A throw-away /etc for account tests: the real shadow tools (`useradd --prefix`) work on
its files, never on this machine's own users and groups."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from workshop.accounts import SystemDB

# debian:trixie-slim's own, plus groups packages and Docker hosts add (one outside the
# static reserved list, as any image might have).
PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
adm:x:4:
tty:x:5:
disk:x:6:
sudo:x:27:
shadow:x:42:
staff:x:50:
users:x:100:
docker:x:106:
labstaff:x:150:
nogroup:x:65534:
"""


def system_db(tmp_path: Path) -> SystemDB:
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and the shadow tools (useradd --prefix)")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).write_text("")
        (root / "etc" / name).chmod(0o600)
    return SystemDB(root)
