"""Handing out workshop materials into participants' homes, never overwriting their files.

A per-participant ledger (in the hub's private state) remembers which version of every
material file a participant was given. So a participant who deletes or edits a handed-out
notebook is never "helped" by getting it back on the next spawn, while a file the
instructor adds or changes later still arrives:

- new to this participant and no file of that name in their home: copied in;
- the same content already there: nothing to do;
- their own different file already at that name: the material arrives next to it as
  ``name (updated).ext`` (``(updated 2)`` ... if that exists too); theirs is left alone.

The files are written by ``tar`` running as the participant, not by root, so a symlink a
participant planted in their home can never redirect a write anywhere they could not
write themselves. Each file arrives or fails on its own: a participant's plain file named
like a materials folder costs that folder's files, reported in `HandoutReport.failed` and
handed out again next time, never the rest of the hand-out.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .accounts import SystemUser

SKIP_PARTS = {".ipynb_checkpoints", "__pycache__", ".git"}


@dataclass
class HandoutReport:
    user: str
    copied: list[str] = field(default_factory=list)  # arrived under their own name
    renamed: dict[str, str] = field(default_factory=dict)  # material -> name it arrived as
    kept: list[str] = field(default_factory=list)  # participant's file left as it was
    failed: dict[str, str] = field(default_factory=dict)  # material -> why it did not arrive

    def as_dict(self) -> dict[str, object]:
        return {"user": self.user, "copied": self.copied, "renamed": self.renamed,
                "kept": self.kept, "failed": self.failed}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def material_files(materials: Path) -> dict[str, Path]:
    """Relative POSIX path -> file, for every regular, non-hidden file under `materials`."""
    found: dict[str, Path] = {}
    if not materials.is_dir():
        return found
    for path in sorted(materials.rglob("*")):
        rel = PurePosixPath(path.relative_to(materials).as_posix())
        if any(p in SKIP_PARTS or p.startswith(".") for p in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            found[str(rel)] = path
    return found


def material_path(rel: str) -> str:
    """`rel` as a path inside the materials folder; ValueError when it would leave it or
    be skipped at hand-out (hidden names)."""
    path = PurePosixPath(rel.strip().strip("/"))
    if (not path.parts or path.is_absolute() or ".." in path.parts or "\x00" in rel
            or any(p.startswith(".") or p in SKIP_PARTS for p in path.parts)):
        raise ValueError(f"not a usable materials path: {rel!r}")
    return str(path)


def updated_name(home: Path, rel: str) -> str:
    p = PurePosixPath(rel)
    for n in range(1, 1000):
        label = "updated" if n == 1 else f"updated {n}"
        candidate = str(p.with_name(f"{p.stem} ({label}){p.suffix}"))
        if not os.path.lexists(home / candidate):
            return candidate
    raise RuntimeError(f"no free name next to {rel}")


class Ledger:
    """What each participant has been given: {relative path: sha256}, one JSON per user."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, user: str) -> Path:
        return self.directory / f"{user}.json"

    @contextmanager
    def locked(self, user: str) -> Iterator[None]:
        """One hand-out per participant at a time (a spawn and the dashboard may race)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / f".{user}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self, user: str) -> dict[str, str]:
        try:
            return json.loads(self._path(user).read_text())
        except FileNotFoundError:
            return {}

    def save(self, user: str, entries: dict[str, str]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{user}.")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f, indent=1, sort_keys=True)
        os.replace(tmp, self._path(user))


@dataclass(frozen=True)
class _Write:
    rel: str  # the material
    src: Path
    digest: str


def _plan(files: dict[str, Path], home: Path, given: dict[str, str],
          report: HandoutReport) -> dict[str, _Write]:
    """Destination name -> what to write there; files already in place are noted as kept."""
    writes: dict[str, _Write] = {}
    for rel, src in files.items():
        digest = _digest(src)
        if given.get(rel) == digest:
            continue  # already handed out this very version
        dest = home / rel
        if not os.path.lexists(dest):
            writes[rel] = _Write(rel, src, digest)
        elif dest.is_file() and not dest.is_symlink() and _digest(dest) == digest:
            report.kept.append(rel)
            given[rel] = digest
        else:
            writes[updated_name(home, rel)] = _Write(rel, src, digest)
            report.kept.append(rel)
    return writes


def _blocked_by(home: Path, dest: str) -> str | None:
    """The part of `dest`'s folder path that exists in `home` but is not a folder."""
    parts = PurePosixPath(dest).parts[:-1]
    for n in range(1, len(parts) + 1):
        part = home.joinpath(*parts[:n])
        if os.path.lexists(part) and (part.is_symlink() or not part.is_dir()):
            return "/".join(parts[:n])
    return None


def _write_as_user(user: SystemUser, writes: dict[str, _Write]) -> dict[str, str]:
    """Write every file of `writes` as the participant; {destination: why} for failures.

    One tar for all files (a subprocess per file would cost seconds for a class); tar goes
    on after a file it cannot write, so each file arrives or fails on its own.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dest, write in writes.items():
            info = tar.gettarinfo(str(write.src), arcname=dest)
            info.uid, info.gid, info.uname, info.gname = user.uid, user.gid, "", ""
            info.mode = 0o644
            with write.src.open("rb") as f:
                tar.addfile(info, f)
    # --skip-old-files: a file that appeared since the plan was made is never replaced.
    result = subprocess.run(
        ["tar", "--extract", "--skip-old-files", "--no-same-owner", "--directory",
         str(user.home)],
        input=buf.getvalue(), user=user.uid, group=user.gid, extra_groups=[],
        check=False, capture_output=True, env={"LC_ALL": "C.UTF-8", "PATH": os.defpath},
    )
    if result.returncode == 0:
        return {}
    # "tar: day1/intro.ipynb: Cannot open: Not a directory": the member, then why.
    stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
    said = dict(line.removeprefix("tar: ").partition(": ")[::2] for line in stderr)
    failed = {}
    for dest in writes:
        if dest in said or not os.path.lexists(user.home / dest):
            blocker = _blocked_by(user.home, dest)
            failed[dest] = (f"'{blocker}' in the home is not a folder" if blocker
                            else said.get(dest) or (stderr[0] if stderr else "not written"))
    return failed


def hand_out(user: SystemUser, materials: str | os.PathLike[str],
             ledger: Ledger) -> HandoutReport:
    """Bring `user`'s home up to date with the materials folder; see the module doc."""
    report = HandoutReport(user.name)
    files = material_files(Path(materials))
    if not files:
        return report
    with ledger.locked(user.name):
        given = ledger.load(user.name)
        writes = _plan(files, user.home, given, report)
        failed = _write_as_user(user, writes) if writes else {}
        for dest, write in writes.items():
            if dest in failed:
                # Not recorded as given: offered again at the next hand-out.
                report.failed[write.rel] = failed[dest]
                continue
            given[write.rel] = write.digest
            if dest == write.rel:
                report.copied.append(write.rel)
            else:
                report.renamed[write.rel] = dest
        ledger.save(user.name, given)
    return report
