"""The size table: names, raw slugs, typos, and what --help shows."""

from __future__ import annotations

import pytest

from provision.cli import build_parser
from provision.sizes import SIZES, UnknownSize, describe_size, resolve_size


@pytest.mark.parametrize(("value", "slug"), [
    ("small", "s-2vcpu-4gb"), ("medium", "s-4vcpu-8gb"), ("LARGE", "s-8vcpu-16gb"),
    ("s-1vcpu-2gb", "s-1vcpu-2gb"), ("c-8", "c-8"), ("gpu-h100x1-80gb", "gpu-h100x1-80gb"),
])
def test_names_and_slugs(value: str, slug: str):
    assert resolve_size(value) == slug


@pytest.mark.parametrize("value", ["huge", "medum", "", "s_2vcpu", "4vcpu-8gb", "-c-8"])
def test_unknown_sizes_are_refused_with_the_choices(value: str):
    with pytest.raises(UnknownSize) as caught:
        resolve_size(value)
    assert "small, medium, large" in str(caught.value)


def test_help_shows_vcpu_and_ram_for_every_size():
    text = build_parser().format_help()
    for size in SIZES.values():
        row = next(line for line in text.splitlines() if line.strip().startswith(size.name))
        assert size.slug in row and f"{size.memory_gb} GB" in row
        assert row.split()[2] == str(size.vcpus)


def test_describe_size():
    assert describe_size("s-4vcpu-8gb") == "medium (s-4vcpu-8gb: 4 vCPU, 8 GB RAM)"
    assert describe_size("c-8") == "c-8"
