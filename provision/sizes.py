"""The one table of droplet sizes an instructor chooses from.

Three names cover the workshops this appliance is for; anything else can be
given as a raw DigitalOcean size slug (e.g. `c-8`), which is passed through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    slug: str
    vcpus: int
    memory_gb: int  # as DigitalOcean sells it

    @property
    def memory_mb(self) -> int:
        return self.memory_gb * 1024  # the API's "memory" field: 8 GB is 8192


# How many participants each holds is not written here: provision/capacity.py computes
# it from the measured memory per participant (shown in --help and in the Readme).


SIZES: dict[str, Size] = {
    size.name: size
    for size in (
        Size("small", "s-2vcpu-4gb", 2, 4),
        Size("medium", "s-4vcpu-8gb", 4, 8),
        Size("large", "s-8vcpu-16gb", 8, 16),
    )
}
DEFAULT_SIZE = "medium"

# DigitalOcean slugs are lowercase words joined by dashes: s-2vcpu-4gb, c-4,
# g-2vcpu-8gb, gpu-h100x1-80gb. The API is the final judge; this only
# catches typos of the names above before any call is made.
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")


class UnknownSize(ValueError):
    pass


def resolve_size(value: str) -> str:
    """Return the DigitalOcean size slug for a table name or a raw slug."""
    key = value.strip().lower()
    if key in SIZES:
        return SIZES[key].slug
    if _SLUG.match(key):
        return key
    names = ", ".join(SIZES)
    raise UnknownSize(
        f"unknown size {value!r}: use one of {names} or a DigitalOcean size slug such as "
        f"{SIZES[DEFAULT_SIZE].slug}"
    )


def describe_size(slug: str) -> str:
    for size in SIZES.values():
        if size.slug == slug:
            return f"{size.name} ({slug}: {size.vcpus} vCPU, {size.memory_gb} GB RAM)"
    return slug


def size_help() -> str:
    names = ", ".join(n + (" (default)" if n == DEFAULT_SIZE else "") for n in SIZES)
    return f"{names} (see the table below) or any DigitalOcean size slug, e.g. c-8"


def size_table() -> str:
    """The size table for --help, one row per size."""
    from provision.capacity import capacity  # it imports this module

    rows = ["  size    slug           vCPU  RAM    holds comfortably"]
    rows += [
        f"  {s.name:<7} {s.slug:<14} {s.vcpus:>4}  {s.memory_gb:>2} GB  "
        f"{capacity(s.memory_mb)} participants"
        for s in SIZES.values()
    ]
    return "\n".join(rows)
