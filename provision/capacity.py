"""How many participants a droplet holds comfortably: the one capacity rule.

    participants = floor((RAM_MB × HEADROOM − OS_RESERVE_MB − HUB_SIDE_MB) / PER_PARTICIPANT_MB)

                 = floor((RAM_MB × 0.85 − 600 − 373) / 336)

- RAM_MB: the droplet's memory as DigitalOcean sells it (4 GB = 4096 MB).
- HEADROOM 0.85: 15 % is never planned for. It covers the RAM the kernel keeps for itself
  (a "4 GB" droplet shows ~3.8 GiB MemTotal), a class running heavier code than the
  allowance below, and the hub side growing with the number of logged-in people.
- OS_RESERVE_MB 600: what runs outside the container plus the page cache worth keeping.
- HUB_SIDE_MB 373: hub, proxy, dashboard, users-sync and idle-culler (measured, RSS).
- PER_PARTICIPANT_MB 336: an idle participant (measured, RSS) plus a working allowance.

Memory, not CPU, is what the rule counts: an idle kernel costs no CPU, and a server that
runs out of memory kills kernels while the class is typing. Instructors have servers too,
so they count like participants. The measurements come from

    .venv/bin/python benchmarks/memory_per_user.py

(5 idle participants in the real stack; see benchmarks/Readme.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from provision.sizes import SIZES, Size

# From `.venv/bin/python benchmarks/memory_per_user.py` (5 idle participants): the hub
# side as a whole, RSS: proxy 67 + dashboard 124 + users-sync 31 + idle-culler 30 +
# hub 122 MB. Measured with 5 people logged in; what each further person adds to it
# (a proxy route, a hub user object) is left to the headroom.
HUB_SIDE_MB = 373

# From the same benchmark: an idle participant is 186 MB RSS (JupyterLab server 120 +
# one started Python kernel after one cell 54, plus small helpers); PSS is 137 MB, so
# RSS, which counts shared libraries in every process, is the pessimistic choice.
IDLE_PARTICIPANT_MB = 186

# What a participant's kernel grows by while working through a Python class. In a
# plain Python process with the participant image's versions (pandas 3.1.1,
# matplotlib 3.11.2), importing numpy + pandas + matplotlib.pyplot added 90 MB RSS,
# and a 100 000 × 10 DataFrame, a groupby and one histogram saved as PNG brought it
# to +111 MB (measured by hand, not part of the benchmark). 150 leaves ~40 MB for the
# objects IPython keeps alive in Out[] / _ and a second copy of the data.
WORKING_ALLOWANCE_MB = 150

PER_PARTICIPANT_MB = IDLE_PARTICIPANT_MB + WORKING_ALLOWANCE_MB  # 336

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
