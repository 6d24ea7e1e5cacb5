"""Secrets made once and kept: proxy token, cookie secrets."""

from __future__ import annotations

from workshop.keys import persistent_secret


def test_made_once_0600_and_read_back(tmp_path):
    path = tmp_path / "state" / "proxy_token"
    first = persistent_secret(path)
    assert len(first) == 64 and int(first, 16) >= 0
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # e.g. restored from a backup by hand
    assert persistent_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert persistent_secret(tmp_path / "other") != first


def test_a_raw_bytes_secret_from_older_versions_is_replaced(tmp_path):
    path = tmp_path / "cookie_secret"
    path.write_bytes(bytes(range(200, 232)))
    secret = persistent_secret(path)
    assert len(secret) == 64 and path.read_text().strip() == secret
