"""The capacity rule: participants a droplet holds, what fits a class, the Readme's table."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from provision.capacity import (
    HEADROOM,
    HUB_SIDE_MB,
    IDLE_PARTICIPANT_MB,
    OS_RESERVE_MB,
    PER_PARTICIPANT_MB,
    Headcount,
    bigger_slug,
    capacity,
    capacity_of,
    holds,
    memory_mb,
    ram_needed_mb,
    readme_table,
    smallest_fitting,
    too_small,
)
from provision.sizes import SIZES, size_table

README = Path(__file__).resolve().parents[3] / "Readme.md"
SECTION = "## How many participants a droplet holds"


def test_constants_are_the_measured_ones():
    # benchmarks/memory_per_user.py --spawner fork --use 600 --work: hub side 278 MB PSS
    # + fork servers 244 MB RSS; a participant 57 MB USS + 22 MB of lesson work.
    assert HUB_SIDE_MB == 278 + 244 and PER_PARTICIPANT_MB == 57 + 22
    assert OS_RESERVE_MB == 600 and HEADROOM == 0.85


def test_measured_terms_can_replace_the_rules():
    # A rehearsal puts in what it measured on the node for its class.
    assert capacity(8192, per_participant_mb=300, hub_side_mb=1000) == \
        (8192 * 85 // 100 - 600 - 1000) // 300


@pytest.mark.parametrize(("name", "expected"), [("small", 29), ("medium", 73),
                                                ("large", 162)])
def test_exact_numbers_for_the_table_sizes(name: str, expected: int):
    assert capacity(SIZES[name].memory_mb) == expected
    assert capacity_of(name) == capacity_of(SIZES[name].slug) == expected


def test_formula():
    # floor((8192 × 0.85 − 600 − 522) / 79) = floor(5841.2 / 79) = 73
    assert capacity(8192) == (8192 * 85 // 100 - 600 - 522) // 79 == 73


def test_monotonic_in_ram_and_never_negative():
    values = [capacity(mb) for mb in range(0, 256 * 1024, 64)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert values[0] == 0 and capacity(1024) == 0 and values[-1] > 500


@pytest.mark.parametrize("n", [0, 1, 7, 17, 38, 100])
def test_ram_needed_is_the_least_that_holds(n: int):
    need = ram_needed_mb(n)
    assert capacity(need) >= n
    if n:
        assert capacity(need - 1) < n


@pytest.mark.parametrize(("slug", "mb"), [
    ("s-4vcpu-8gb", 8192), ("s-2vcpu-4gb", 4096), ("m-2vcpu-16gb", 16384),
    ("g-8vcpu-32gb", 32768), ("s-1vcpu-512mb-10gb", 512), ("s-4vcpu-16gb-320gb-intel", 16384),
    ("s-2vcpu-4gb-amd", 4096), ("SMALL", 4096), (" medium ", 8192),
    ("c-8", None), ("c2-4", None), ("gpu-h100x1-80gb", None), ("nonsense", None), ("", None),
])
def test_memory_from_the_table_or_the_slug(slug: str, mb: int | None):
    assert memory_mb(slug) == mb


def test_unknown_memory_means_unknown_capacity():
    assert capacity_of("c-8") is None
    assert holds("c-8") == "capacity unknown for this size (c-8): its RAM is not in its name"
    assert too_small("c-8", Headcount(500, 5), "users.txt") is None


@pytest.mark.parametrize(("n", "name"), [
    (-1, "small"), (0, "small"), (1, "small"), (29, "small"), (30, "medium"),
    (73, "medium"), (74, "large"), (162, "large"), (163, None), (1000, None),
])
def test_smallest_fitting(n: int, name: str | None):
    assert smallest_fitting(n) == name


def test_bigger_slug_beyond_the_table():
    assert bigger_slug(163) == "g-8vcpu-32gb"
    assert bigger_slug(capacity_of("g-8vcpu-32gb") + 1) == "g-16vcpu-64gb"  # type: ignore[operator]
    assert bigger_slug(100_000) is None


def test_headcount_wording():
    assert str(Headcount(1, 1)) == "2 people (1 participant, 1 instructor)"
    assert str(Headcount(28, 2, 3)) == \
        "30 people (28 participants, 2 instructors, 3 broken lines not counted)"


def test_too_small_names_the_size_that_fits():
    why = too_small("s-2vcpu-4gb", Headcount(28, 2, 1), "my-class.txt")
    assert why == ("my-class.txt lists 30 people (28 participants, 2 instructors, 1 broken "
                   "line not counted) but small (s-2vcpu-4gb, 4 GB RAM) holds about 29 "
                   "comfortably: use --size medium (s-4vcpu-8gb, holds 73)")
    assert too_small("small", Headcount(28, 1), "x") is None  # exactly 29: fits
    assert too_small("s-2vcpu-2gb", Headcount(8, 0), "x") == (
        "x lists 8 people (8 participants, 0 instructors) but s-2vcpu-2gb (2 GB RAM) holds "
        "about 7 comfortably: use --size small (s-2vcpu-4gb, holds 29)")


def test_too_small_beyond_the_table_suggests_a_slug_or_splitting():
    why = too_small("large", Headcount(199, 1), "x")
    assert why is not None
    assert "none of small, medium, large does: 200 people need about 20 GB RAM" in why
    assert why.endswith("e.g. --size g-8vcpu-32gb (holds 338)")
    huge = too_small("large", Headcount(5000, 0), "x")
    assert huge is not None and huge.endswith("split the class across several nodes")


def test_help_table_uses_the_rule():
    text = size_table()
    for size in SIZES.values():
        assert f"{capacity(size.memory_mb)} participants" in text


def readme_section_table() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"Readme.md lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^\|.*(?:\n\|.*)*", section, re.MULTILINE)
    assert match, "no table in the Readme's capacity section"
    return match.group(0)


def test_readme_table_is_the_one_the_rule_computes():
    # When this fails, paste provision.capacity.readme_table() into the Readme.
    assert readme_section_table() == readme_table()


def test_readme_states_the_formula_with_the_constants():
    section = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    formula = (f"floor((RAM_MB × {HEADROOM} − {OS_RESERVE_MB} − {HUB_SIDE_MB}) / "
               f"({IDLE_PARTICIPANT_MB} + {PER_PARTICIPANT_MB - IDLE_PARTICIPANT_MB}))")
    assert formula in section
    assert ".venv/bin/python benchmarks/memory_per_user.py" in section
