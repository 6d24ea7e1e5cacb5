"""Which files go to the node: the checkout, never its secrets, caches or data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision.errors import ProvisionError
from provision.upload import USERS_REMOTE, select_files

REPO = Path(__file__).resolve().parents[3]


def make_checkout(root: Path) -> Path:
    files = {
        "create-node.py": "", "setup-node.sh": "#!/bin/bash\n", "docker-compose.yml": "",
        "Dockerfile": "", ".dockerignore": "", "Readme.md": "", "pyproject.toml": "",
        ".gitignore": "", "etc/jupyterhub/jupyterhub_config.py": "",
        "etc/jupyterhub/users.txt.sample": "alice:x\n",
        "etc/jupyterhub/users.txt": "alice:real-password\n",
        "etc/jupyterhub/users.txt.bak": "alice:old-password\n",
        "etc/nginx/site.conf.template": "", "services/dashboard/app.py": "",
        "services/dashboard/__pycache__/app.cpython-311.pyc": "",
        "services/dashboard/app.py~": "", "services/dashboard/static/poll.js": "",
        "provision/ssh.py": "", "home/Readme.txt": "", "home/alice/work.ipynb": "{}",
        "tmp/Readme.txt": "", "tmp/events.sqlite": "", ".git/config": "",
        ".venv/bin/python": "", "tests/run.sh": "", ".ci/run": "",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "setup-node.sh").chmod(0o755)
    return root


def remote_names(items) -> set[str]:
    return {item.remote for item in items}


def test_selection(tmp_path: Path):
    items = select_files(make_checkout(tmp_path))
    names = remote_names(items)
    assert {"create-node.py", "setup-node.sh", "docker-compose.yml", "Dockerfile",
            ".dockerignore", "Readme.md", "etc/jupyterhub/jupyterhub_config.py",
            "etc/jupyterhub/users.txt.sample", "services/dashboard/static/poll.js",
            "provision/ssh.py", "home", "home/Readme.txt", "tmp", "tmp/Readme.txt"} <= names
    for never in ("etc/jupyterhub/users.txt", "etc/jupyterhub/users.txt.bak",
                  "home/alice/work.ipynb", "tmp/events.sqlite", ".git/config",
                  ".venv/bin/python", "tests/run.sh", ".ci/run", "pyproject.toml",
                  "services/dashboard/app.py~",
                  "services/dashboard/__pycache__/app.cpython-311.pyc"):
        assert never not in names, never
    assert not any("__pycache__" in n or n.startswith(".git") for n in names)
    modes = {item.remote: item.mode for item in items}
    assert modes["setup-node.sh"] == 0o755 and modes["Dockerfile"] == 0o644


def test_directories_come_before_their_files(tmp_path: Path):
    items = select_files(make_checkout(tmp_path))
    seen: set[str] = set()
    for item in items:
        parent = item.remote.rpartition("/")[0]
        assert not parent or parent in seen, item.remote
        if item.is_dir:
            seen.add(item.remote)


def test_users_file_only_when_asked_and_private(tmp_path: Path):
    root = make_checkout(tmp_path / "repo")
    users = tmp_path / "participants.txt"
    users.write_text("bob:pw\n")
    items = select_files(root, users)
    (entry,) = [item for item in items if item.remote == USERS_REMOTE]
    assert entry.local == users and entry.mode == 0o600


def test_symlinks_leaving_the_checkout_are_not_followed(tmp_path: Path):
    root = make_checkout(tmp_path / "repo")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    os.symlink(secret, root / "etc" / "leak.txt")
    os.symlink(tmp_path, root / "services" / "outside")
    names = remote_names(select_files(root))
    assert "etc/leak.txt" not in names
    assert not any(n.startswith("services/outside") for n in names)


def test_incomplete_checkout_is_refused(tmp_path: Path):
    with pytest.raises(ProvisionError, match=r"setup-node\.sh is missing"):
        select_files(tmp_path)


def test_this_checkout_uploads_what_setup_node_checks_for():
    names = remote_names(select_files(REPO))
    for needed in ("setup-node.sh", "docker-compose.yml", "Dockerfile",
                   "etc/jupyterhub/jupyterhub_config.py", "services/dashboard/app.py",
                   "provision/options.py", "create-node.py"):
        assert needed in names
    assert not any(n.startswith(("tmp/", "home/")) and not n.endswith("Readme.txt")
                   for n in names)
