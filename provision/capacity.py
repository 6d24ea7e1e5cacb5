"""How many participants a droplet holds comfortably: the one capacity rule.

    participants = floor((RAM_MB × HEADROOM − OS_RESERVE_MB − HUB_SIDE_MB) / PER_PARTICIPANT_MB)

                 = floor((RAM_MB × 0.85 − 600 − 522) / (57 + 22))

- RAM_MB: the droplet's memory as DigitalOcean sells it (4 GB = 4096 MB).
- HEADROOM 0.85: 15 % is never planned for. It covers the RAM the kernel keeps for itself
  (a "4 GB" droplet shows ~3.8 GiB MemTotal), a class running heavier code than the
  allowance below, pages a long class dirties beyond the ten minutes measured, and the
  hub side growing with the number of logged-in people.
- OS_RESERVE_MB 600: what runs outside the container plus the page cache worth keeping.
- HUB_SIDE_MB 522: hub, proxy, dashboard, users-sync, idle-culler, and the two fork servers
  whose pages every participant's server and kernel share (measured).
- PER_PARTICIPANT_MB 79: what each participant adds (measured): their server and kernel's
  own pages, and the working allowance.

Memory, not CPU, is what the rule counts: an idle kernel costs no CPU, and a server that
runs out of memory kills kernels while the class is typing. Instructors have servers too,
so they count like participants. The measurements come from

    .venv/bin/python benchmarks/memory_per_user.py --users 5 --idle 20 --use 600 \
        --every 30 --work --spawner fork

(5 participants in the real stack with the fork spawner, the default; see
benchmarks/Readme.md). With servers and kernels forked from preloaded processes the
imported code is in memory once, in the fork servers, and every participant shares it:
so the shared pages are counted once, on the hub side (the fork servers' RSS: all their
pages), and a participant counts with their own pages only (USS, what each additional
participant really adds). Check on the measured stack: the sum of every process's PSS
(the exact total) was 888 MB with 5 participants after the work; the rule's terms give
522 + 5 × 79 = 917 MB.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from provision.sizes import SIZES, Size

# From the benchmark above, after 10 minutes of light use: hub 99 + dashboard 100 + proxy 42
# + users-sync 18 + idle-culler 19 MB (PSS: these processes share the image's libraries
# among themselves), plus the fork servers for servers 117 and for kernels 127 MB (RSS:
# every page of theirs, the ones their children share included, counted here once).
HUB_SIDE_MB = 522

# An idle participant, JupyterLab server + one kernel after one cell, after 10 minutes of
# light use (a small cell every 30 s): 57 MB of their own pages (USS; 55 MB right after
# the first cell, so light use dirtied 1.6 MB of shared pages). Their PSS was 80 MB and
# their RSS 213 MB (RSS counts every shared page in every process: the classic spawner's
# 173 MB RSS, 130 MB PSS participant is the comparison).
IDLE_PARTICIPANT_MB = 57

# What a participant's kernel grows by in a lesson (benchmarks/memory_per_user.py --work:
# the rehearsal's cells: import numpy, pandas and matplotlib, a 100 000 × 10 DataFrame, a
# groupby, a histogram saved as PNG): +21.7 MB of their own pages (21.2 .. 21.9). The
# imports cost nothing of their own any more: the kernels' fork server has them
# (etc/jupyter/kernel-preload.txt). A class doing heavier work measures its own with
# rehearse.py, which puts what it measured into this rule.
WORKING_ALLOWANCE_MB = 22

PER_PARTICIPANT_MB = IDLE_PARTICIPANT_MB + WORKING_ALLOWANCE_MB  # 79

# Outside the container: Ubuntu's own services on a fresh droplet (systemd, journald,
# sshd, snapd, the DigitalOcean agent: ~250 MB), dockerd + containerd (~100 MB) and
# nginx (~20 MB), plus ~230 MB of page cache for the image's Python and JupyterLab
# files, so that 40 people logging in at 9:00 are not all reading them from disk.
# An estimate, not a measurement: the benchmark runs inside the container.
OS_RESERVE_MB = 600

HEADROOM = 0.85  # plan for 85 % of the RAM, keep 15 %

# Bigger DigitalOcean sizes to suggest when none of the table's sizes is enough
# (General Purpose droplets: dedicated vCPUs, 4 GB RAM per vCPU).
BIGGER_SLUGS = ("g-8vcpu-32gb", "g-16vcpu-64gb", "g-32vcpu-128gb")

# A slug that encodes its memory: s-4vcpu-8gb, m-2vcpu-16gb, s-1vcpu-512mb-10gb,
# s-4vcpu-16gb-320gb-intel (the first size after the vCPUs is the RAM, the next the
# disk). c-8 or gpu-h100x1-80gb do not say how much RAM they have (the 80gb of the
# latter is the GPU's).
_SLUG_MEMORY = re.compile(
    r"^[a-z][a-z0-9]*-(?P<vcpus>\d+)vcpu-(?P<amount>\d+)(?P<unit>gb|mb)(?:-|$)")


def capacity(ram_mb: int, per_participant_mb: float = PER_PARTICIPANT_MB,
             hub_side_mb: float = HUB_SIDE_MB) -> int:
    """Participants a droplet with `ram_mb` MB of RAM holds comfortably (never negative).

    The rule's terms are this module's measurements; a rehearsal (provision/rehearsal.py)
    puts in what it measured on a live node for its class instead."""
    usable = ram_mb * HEADROOM - OS_RESERVE_MB - hub_side_mb
    return max(0, math.floor(usable / per_participant_mb))


def ram_needed_mb(participants: int) -> int:
    """The least RAM (MB) for which capacity() is at least `participants`."""
    need = (participants * PER_PARTICIPANT_MB + OS_RESERVE_MB + HUB_SIDE_MB) / HEADROOM
    return max(0, math.ceil(need))


def _table_size(size: str) -> Size | None:
    key = size.strip().lower()
    return SIZES.get(key) or next((s for s in SIZES.values() if s.slug == key), None)


def memory_mb(size: str) -> int | None:
    """RAM in MB of a size name (small, ...) or DigitalOcean slug; None when unknown."""
    known = _table_size(size)
    if known is not None:
        return known.memory_mb
    match = _SLUG_MEMORY.match(size.strip().lower())
    if not match:
        return None
    amount = int(match["amount"])
    return amount * 1024 if match["unit"] == "gb" else amount


def capacity_of(size: str) -> int | None:
    """Participants a size name or slug holds comfortably; None: capacity unknown."""
    ram = memory_mb(size)
    return None if ram is None else capacity(ram)


def smallest_fitting(n_participants: int) -> str | None:
    """The name of the smallest size in the table holding `n_participants`, or None."""
    for size in sorted(SIZES.values(), key=lambda s: s.memory_mb):
        if capacity(size.memory_mb) >= n_participants:
            return size.name
    return None


def bigger_slug(n_participants: int) -> str | None:
    """A DigitalOcean slug beyond the table that holds `n_participants`, or None."""
    return next((slug for slug in BIGGER_SLUGS
                 if capacity(memory_mb(slug) or 0) >= n_participants), None)


def describe(size: str) -> str:
    """A size for messages: `medium (s-4vcpu-8gb, 8 GB RAM)` or `c-8`."""
    known = _table_size(size)
    if known is not None:
        return f"{known.name} ({known.slug}, {known.memory_gb} GB RAM)"
    ram = memory_mb(size)
    if ram is None:
        return size
    amount = f"{ram // 1024} GB" if ram % 1024 == 0 else f"{ram} MB"
    return f"{size} ({amount} RAM)"


def holds(size: str) -> str:
    """One line for the plan: what `size` holds, or that it is not known."""
    fits = capacity_of(size)
    if fits is None:
        return f"capacity unknown for this size ({size}): its RAM is not in its name"
    return f"{describe(size)} holds about {fits} participants comfortably"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class Headcount:
    """Who is in a users.txt: everybody gets a server, instructors included."""

    participants: int
    instructors: int
    skipped: int = 0  # broken lines, which the hub skips too

    @property
    def people(self) -> int:
        return self.participants + self.instructors

    def __str__(self) -> str:
        """E.g. `30 people (28 participants, 2 instructors, 1 broken line not counted)`."""
        parts = [_plural(self.participants, "participant"),
                 _plural(self.instructors, "instructor")]
        if self.skipped:
            parts.append(_plural(self.skipped, "broken line") + " not counted")
        return f"{self.people} people ({', '.join(parts)})"


def too_small(size: str, count: Headcount, source: str) -> str | None:
    """Why `size` is too small for `count` (one line naming what fits), or None when it
    holds them or its capacity is unknown."""
    fits = capacity_of(size)
    if fits is None or fits >= count.people:
        return None
    head = f"{source} lists {count} but {describe(size)} holds about {fits} comfortably"
    name = smallest_fitting(count.people)
    if name is not None:
        fitting = SIZES[name]
        return (f"{head}: use --size {name} ({fitting.slug}, holds "
                f"{capacity(fitting.memory_mb)})")
    gb = math.ceil(ram_needed_mb(count.people) / 1024)
    head += (f"; none of {', '.join(SIZES)} does: {count.people} people need about "
             f"{gb} GB RAM")
    slug = bigger_slug(count.people)
    if slug is not None:
        return f"{head}, e.g. --size {slug} (holds {capacity_of(slug)})"
    return f"{head}: split the class across several nodes"


def readme_table() -> str:
    """The Readme's table (section "How many participants a droplet holds")."""
    rows = ["| size | slug | vCPU / RAM | participants (comfortably) |",
            "| --- | --- | --- | --- |"]
    rows += [f"| {s.name} | `{s.slug}` | {s.vcpus} vCPU / {s.memory_gb} GB | "
             f"{capacity(s.memory_mb)} |" for s in SIZES.values()]
    for slug in BIGGER_SLUGS[:2]:
        match = _SLUG_MEMORY.match(slug)
        assert match is not None
        rows.append(f"| (a bigger slug) | `{slug}` | {match['vcpus']} vCPU / "
                    f"{match['amount']} GB | {capacity_of(slug)} |")
    return "\n".join(rows)
