"""Every end-to-end test runs beside the README's appliance and must leave it as it was
(tests/e2e/readme_appliance.py). WORKSHOP_TESTS_ALONE=1 skips that, for a quick run of a
single e2e test while developing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.readme_appliance import ReadmeAppliance


@pytest.fixture(scope="session", autouse=True)
def readme_appliance() -> Iterator[ReadmeAppliance | None]:
    if os.environ.get("WORKSHOP_TESTS_ALONE") == "1":
        yield None
        return
    appliance = ReadmeAppliance()
    try:
        appliance.ensure()
        yield appliance
        appliance.check_untouched()
    finally:
        appliance.stop_if_started()
