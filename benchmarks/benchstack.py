"""The stack a benchmark brings up: its own compose project and loopback ports, and a
choice of spawner, so a benchmark never meets another engineer's stack or the README's.

    stack = bench_stack("bench", port=860, project="workshop-fork-bench", spawner="fork")

`spawner` (local, fork, containers) becomes WORKSHOP_SPAWNER through a one-line compose
override written next to the stack's scratch folder; None keeps the configuration's
default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.e2e.compose_stack import ROOT, Stack

DEFAULT_PORT = 920  # loopback ports 920-923
DEFAULT_PROJECT = "workshop-bench"


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="first of the stack's four loopback ports (default 920)")
    parser.add_argument("--project", default=DEFAULT_PROJECT,
                        help="compose project name (default workshop-bench)")
    parser.add_argument("--spawner", choices=("local", "fork"), default=None,
                        help="WORKSHOP_SPAWNER for the stack (default: the configuration's)")


def stack_options(args: argparse.Namespace) -> str:
    """The options as they were given, for the `reproduce:` line."""
    out = []
    if args.port != DEFAULT_PORT:
        out.append(f"--port {args.port}")
    if args.project != DEFAULT_PROJECT:
        out.append(f"--project {args.project}")
    if args.spawner:
        out.append(f"--spawner {args.spawner}")
    return " ".join(out)


def bench_stack(name: str, port: int = DEFAULT_PORT, project: str = DEFAULT_PROJECT,
                spawner: str | None = None) -> Stack:
    workdir = ROOT / "tmp" / (name if project == DEFAULT_PROJECT else f"{name}-{project}")
    extra: tuple[Path, ...] = ()
    if spawner:
        override = workdir.parent / f".{project}.spawner.yml"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text("services:\n  hub:\n    environment:\n"
                            f"      WORKSHOP_SPAWNER: {spawner}\n")
        extra = (override,)
    return Stack(workdir, project=project, port=port, extra_files=extra)
