"""FileSystemSource: reading participants' homes as root, links never followed, races lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dashboard.sources import FileSystemSource, NotebookMissing, SourceError
from tests.unit.dashboard.nbfactory import code, notebook, stream, write

PATH = "day1/intro.ipynb"


@pytest.fixture
def homes(tmp_path) -> Path:
    for user in ("alice", "bob", "carol"):
        write(tmp_path / "home" / user / PATH, notebook(code(f"'{user}'", 1, stream(user))))
    return tmp_path / "home"


def test_lists_notebooks_but_not_hidden_ones(homes):
    write(homes / "alice" / ".ipynb_checkpoints" / "intro-checkpoint.ipynb", notebook())
    write(homes / "alice" / "deep" / ".git" / "x.ipynb", notebook())
    write(homes / ".hidden-user" / "x.ipynb", notebook())
    write(homes / "alice" / "notes.txt", "text")
    (homes / "stray-file").write_text("not a home")
    listed = sorted((u, p) for u, p, _ in FileSystemSource(homes).list())
    assert listed == [("alice", PATH), ("bob", PATH), ("carol", PATH)]


def test_reads_content_and_mtime(homes):
    file = homes / "alice" / PATH
    os.utime(file, ns=(1_234_000_000_000, 1_234_000_000_000))
    source = FileSystemSource(homes)
    got = source.read("alice", PATH)
    assert got.mtime_ns == source.mtime_ns("alice", PATH) == 1_234_000_000_000
    assert json.loads(got.content)["cells"][0]["source"] == "'alice'"
    assert [m for u, p, m in source.list() if u == "alice"] == [1_234_000_000_000]


def test_links_are_not_part_of_a_home(homes, tmp_path):
    secret = write(tmp_path / "secret.ipynb", notebook())
    alice = homes / "alice"
    (alice / "leak.ipynb").symlink_to(secret)
    (alice / "to-bob.ipynb").symlink_to(homes / "bob" / PATH)
    (alice / "mine-again.ipynb").symlink_to(alice / PATH)  # even inside her own home
    (alice / "bobs-day1").symlink_to(homes / "bob" / "day1")  # a folder link
    source = FileSystemSource(homes)
    for path in ("leak.ipynb", "to-bob.ipynb", "mine-again.ipynb", "bobs-day1/intro.ipynb"):
        with pytest.raises(NotebookMissing):
            source.read("alice", path)
        assert source.mtime_ns("alice", path) is None
    with pytest.raises(NotebookMissing, match="links are not followed"):
        source.read("alice", "leak.ipynb")
    assert sorted(p for u, p, _ in source.list() if u == "alice") == [PATH]
    # A home that is itself a link is nobody's home.
    (homes / "mallory").symlink_to(homes / "bob")
    assert not any(u == "mallory" for u, _, _ in source.list())
    with pytest.raises(NotebookMissing):
        source.read("mallory", PATH)


def test_fifos_huge_files_and_files_for_folders(homes):
    alice = homes / "alice"
    os.mkfifo(alice / "pipe.ipynb")
    source = FileSystemSource(homes, max_bytes=100)
    with pytest.raises(SourceError, match="not a regular file"):
        source.read("alice", "pipe.ipynb")  # and it did not hang on the FIFO
    write(alice / "big.ipynb", notebook(code("x" * 200, 1)))
    with pytest.raises(SourceError, match="too large to show"):
        source.read("alice", "big.ipynb")
    with pytest.raises(NotebookMissing):
        source.read("alice", "nope.ipynb")
    (alice / "plain").write_text("a file where a folder is expected")
    with pytest.raises(NotebookMissing):
        source.read("alice", "plain/x.ipynb")
    assert source.mtime_ns("alice", "nope.ipynb") is None
    with pytest.raises(ValueError):
        source.read("alice", "../bob/day1/intro.ipynb")


def test_listing_is_bounded_in_depth_and_folders(homes):
    deep = homes / "alice" / "a" / "b" / "c"
    write(deep / "deep.ipynb", notebook())
    for n in range(5):
        write(homes / "bob" / f"f{n}" / "x.ipynb", notebook())
    listed = {(u, p) for u, p, _ in FileSystemSource(homes, max_depth=2, max_folders=4).list()}
    assert ("alice", "a/b/c/deep.ipynb") not in listed  # three folders deep
    assert ("alice", PATH) in listed  # shallow folders first: a deep tree hides nothing
    # bob: his home and three more folders of his six, in name order.
    assert sorted(p for u, p in listed if u == "bob") == [PATH, "f0/x.ipynb", "f1/x.ipynb"]
    listed = {(u, p) for u, p, _ in FileSystemSource(homes).list()}
    assert ("alice", "a/b/c/deep.ipynb") in listed and ("bob", "f4/x.ipynb") in listed


# The race: alice swaps her folder (and her notebook) for links to bob's, over and over,
# while the dashboard reads as root. Run in its own process: both really run at once.
SWAPPER = r"""
import os, sys, time
home, bob = sys.argv[1], sys.argv[2]
day1, real = os.path.join(home, "day1"), os.path.join(home, "day1.real")
nb, nb_real = os.path.join(day1, "intro.ipynb"), os.path.join(day1, "intro.real")
print("swapping", flush=True)
while True:
    os.rename(day1, real)                        # the folder becomes a link to bob's
    os.symlink(os.path.join(bob, "day1"), day1)
    os.unlink(day1)
    os.rename(real, day1)
    os.rename(nb, nb_real)                       # the notebook becomes a link to bob's
    os.symlink(os.path.join(bob, "day1", "intro.ipynb"), nb)
    os.unlink(nb)
    os.rename(nb_real, nb)
    time.sleep(0.0001)                           # and stays alice's own for a moment
"""
RACE_SECONDS = 2.0  # some 10 000 reads each on a slow machine


def test_a_folder_swapped_for_a_link_never_shows_someone_elses_notebook(homes):
    write(homes / "bob" / "day1" / "bob-only.ipynb", notebook())
    source = FileSystemSource(homes)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(homes / "alice"),
                                str(homes / "bob")], stdout=subprocess.PIPE, text=True)
    ours: Counter[str] = Counter()
    following: Counter[str] = Counter()  # a reader that follows links, for comparison
    listed: set[str] = set()
    try:
        assert swapper.stdout.readline().strip() == "swapping"
        deadline = time.monotonic() + RACE_SECONDS
        while time.monotonic() < deadline:
            try:
                ours[whose(source.read("alice", PATH).content)] += 1
            except NotebookMissing:
                ours["missing"] += 1  # mid-swap, or a link: never someone else's
            try:
                following[whose((homes / "alice" / PATH).read_bytes())] += 1
            except OSError:
                following["missing"] += 1
            if ours.total() % 50 == 0:
                listed |= {p for u, p, _ in source.list() if u == "alice"}
    finally:
        swapper.kill()
        swapper.wait()
    assert ours["bob"] == 0, f"read bob's notebook as alice's: {ours}"
    assert ours["alice"] > 0, f"never read alice's notebook: {ours}"
    # The race was real: reading the same path the ordinary way gave bob's notebook.
    assert following["bob"] > 0, f"the swap never took effect: {following}"
    assert "day1/bob-only.ipynb" not in listed
    print(f"\nours {dict(ours)}; following links {dict(following)}")


def whose(content: bytes | str) -> str:
    source = json.loads(content)["cells"][0]["source"]
    return source.strip("'")
