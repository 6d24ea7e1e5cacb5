"""Constants and assertions shared by the provisioning end-to-end tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CREATE_NODE = ROOT / "create-node.py"
DOMAIN = "workshop.test"
HOST = "lab"
FQDN = f"{HOST}.{DOMAIN}"
# Distinctive, so a test can prove it never appears in any output.
TOKEN = "dop_v1_SECRET-token-4f7c2a9e1b3d5f60718293a4b5c6d7e8"
DNS_TOKEN = "dop_v1_DNS-ONLY-token-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PROGRESS = re.compile(r"^\[\s*\d+\.\ds\] ")


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one error line on stderr containing every needle, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("create-node: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
