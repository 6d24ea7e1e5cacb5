"""Handing out materials: copied once, never overwriting, changed originals beside."""

from __future__ import annotations

import os
from pathlib import Path

from workshop.accounts import SystemUser
from workshop.materials import Ledger, hand_out


def setup(tmp_path: Path) -> tuple[SystemUser, Path, Ledger]:
    materials = tmp_path / "materials"
    (materials / "day1").mkdir(parents=True)
    (materials / "day1" / "intro.ipynb").write_text("v1")
    (materials / "data.csv").write_text("a,b\n")
    (materials / ".hidden").write_text("no")
    (materials / ".ipynb_checkpoints").mkdir()
    (materials / ".ipynb_checkpoints" / "x.ipynb").write_text("no")
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    # The test runs as root: the participant's uid is ours here.
    user = SystemUser("alice", os.getuid(), os.getgid(), home, created=True)
    return user, materials, Ledger(tmp_path / "ledger")


def test_first_handout_copies_everything_visible(tmp_path):
    user, materials, ledger = setup(tmp_path)
    report = hand_out(user, materials, ledger)
    assert sorted(report.copied) == ["data.csv", "day1/intro.ipynb"]
    assert (user.home / "day1" / "intro.ipynb").read_text() == "v1"
    assert not (user.home / ".hidden").exists()
    assert not (user.home / ".ipynb_checkpoints").exists()


def test_existing_files_are_never_overwritten(tmp_path):
    user, materials, ledger = setup(tmp_path)
    (user.home / "data.csv").write_text("mine")
    report = hand_out(user, materials, ledger)
    assert (user.home / "data.csv").read_text() == "mine"
    assert report.renamed == {"data.csv": "data (updated).csv"}
    assert (user.home / "data (updated).csv").read_text() == "a,b\n"


def test_deleted_or_edited_handouts_are_left_alone_until_the_original_changes(tmp_path):
    user, materials, ledger = setup(tmp_path)
    hand_out(user, materials, ledger)
    (user.home / "data.csv").unlink()
    (user.home / "day1" / "intro.ipynb").write_text("my edits")
    again = hand_out(user, materials, ledger)
    assert again.copied == [] and again.renamed == {}
    assert not (user.home / "data.csv").exists()

    (materials / "day1" / "intro.ipynb").write_text("v2")
    changed = hand_out(user, materials, ledger)
    assert (user.home / "day1" / "intro.ipynb").read_text() == "my edits"
    assert changed.renamed == {"day1/intro.ipynb": "day1/intro (updated).ipynb"}
    (materials / "day1" / "intro.ipynb").write_text("v3")
    third = hand_out(user, materials, ledger)
    assert third.renamed == {"day1/intro.ipynb": "day1/intro (updated 2).ipynb"}


def test_a_planted_symlink_is_never_written_through(tmp_path):
    user, materials, ledger = setup(tmp_path)
    target = tmp_path / "outside.txt"
    target.write_text("precious")
    (user.home / "data.csv").symlink_to(target)
    hand_out(user, materials, ledger)
    assert target.read_text() == "precious"
    assert (user.home / "data (updated).csv").read_text() == "a,b\n"


def test_identical_existing_file_counts_as_given(tmp_path):
    user, materials, ledger = setup(tmp_path)
    (user.home / "data.csv").write_text("a,b\n")
    report = hand_out(user, materials, ledger)
    assert "data.csv" in report.kept and "data.csv" not in report.renamed
    assert ledger.load("alice")["data.csv"]


def test_a_file_where_a_folder_belongs_costs_only_those_files(tmp_path):
    user, materials, ledger = setup(tmp_path)
    (user.home / "day1").write_text("my notes, named like the folder")
    report = hand_out(user, materials, ledger)  # used to raise: tar exits 2
    assert report.copied == ["data.csv"]
    assert report.failed == {"day1/intro.ipynb": "'day1' in the home is not a folder"}
    assert (user.home / "data.csv").read_text() == "a,b\n"
    assert (user.home / "day1").read_text() == "my notes, named like the folder"
    assert "day1/intro.ipynb" not in ledger.load("alice")  # not given: offered again

    (user.home / "day1").rename(user.home / "notes.txt")
    again = hand_out(user, materials, ledger)
    assert again.copied == ["day1/intro.ipynb"] and again.failed == {}


def test_a_home_that_is_gone_fails_every_file_with_a_reason(tmp_path):
    user, materials, ledger = setup(tmp_path)
    user.home.rmdir()
    report = hand_out(user, materials, ledger)
    assert set(report.failed) == {"data.csv", "day1/intro.ipynb"} and report.copied == []
    assert all(report.failed.values())
