"""Participants' system accounts, made by the real shadow tools in a temporary /etc."""

from __future__ import annotations

import os

import pytest

from workshop.accounts import (
    FIRST_UID,
    ReservedName,
    SystemDB,
    ensure_system_user,
    participant_uid,
)

from .accounts_fixture import system_db


@pytest.fixture
def db(tmp_path) -> SystemDB:
    return system_db(tmp_path)


def test_a_new_participant_gets_own_ids_and_a_private_home(db, tmp_path):
    homes = tmp_path / "home"
    alice = ensure_system_user("alice", homes, db)
    assert alice.created and alice.uid == alice.gid == FIRST_UID
    assert db.users()["alice"].uid == FIRST_UID and db.groups()["alice"] == FIRST_UID
    st = alice.home.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (FIRST_UID, FIRST_UID, 0o700)
    again = ensure_system_user("alice", homes, db)
    assert not again.created and again.uid == alice.uid
    assert ensure_system_user("bob", homes, db).uid == FIRST_UID + 1


def test_a_kept_home_gives_its_uid_back_after_a_rebuild(db, tmp_path):
    homes = tmp_path / "home"
    (homes / "carol").mkdir(parents=True)
    os.chown(homes / "carol", 2345, 2345)
    assert ensure_system_user("carol", homes, db).uid == 2345
    assert participant_uid("carol", homes, db) == 2345
    assert participant_uid("dave", homes, db) is None
    (homes / "dave").mkdir()
    os.chown(homes / "dave", 2400, 2400)  # account gone with the old container
    assert participant_uid("dave", homes, db) == 2400
    assert participant_uid("root", homes, db) is None  # never a system uid


@pytest.mark.parametrize("name", ["staff", "users", "sudo", "docker", "labstaff", "daemon",
                                  "nobody", "tty", "disk", "shadow", "adm", "root", "nogroup"])
def test_system_names_are_refused_and_change_nothing(db, tmp_path, name):
    passwd, group = (db.root / "etc/passwd").read_text(), (db.root / "etc/group").read_text()
    error = ValueError if name != "labstaff" else ReservedName
    with pytest.raises(error, match=f"'{name}'"):
        ensure_system_user(name, tmp_path / "home", db)
    assert (db.root / "etc/passwd").read_text() == passwd
    assert (db.root / "etc/group").read_text() == group
    assert not (tmp_path / "home" / name).exists()


def test_a_name_only_this_system_uses_is_refused_by_the_live_check(db, tmp_path):
    # "labstaff" is in no static list: only the container's own /etc/group knows it.
    with pytest.raises(ReservedName, match="system group here \\(gid 150\\)"):
        ensure_system_user("labstaff", tmp_path / "home", db)


def test_a_group_left_behind_in_range_is_reused(db, tmp_path):
    db.run("groupadd", "--gid", "2100", "erin")  # an interrupted creation
    erin = ensure_system_user("erin", tmp_path / "home", db)
    assert (erin.uid, erin.gid) == (2100, 2100)


def test_a_participant_with_a_system_primary_group_is_refused(db, tmp_path):
    db.run("useradd", "--uid", "2200", "--gid", "50", "--no-create-home", "frank")
    with pytest.raises(ReservedName, match="primary group"):
        ensure_system_user("frank", tmp_path / "home", db)
