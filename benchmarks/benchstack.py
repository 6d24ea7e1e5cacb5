"""The stack a benchmark brings up: its own compose project and loopback ports, and a
choice of spawner, so a benchmark never meets another engineer's stack or the README's.

    stack = bench_stack("bench", port=860, project="workshop-fork-bench", spawner="fork")

`spawner` (local, fork, containers) becomes WORKSHOP_SPAWNER through a one-line compose
override written next to the stack's scratch folder; None keeps the configuration's
default.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tests.e2e.compose_stack import ROOT, Stack

DEFAULT_PORT = 920  # loopback ports 920-923
DEFAULT_PROJECT = "workshop-bench"


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="first of the stack's four loopback ports (default 920)")
    parser.add_argument("--project", default=DEFAULT_PROJECT,
                        help="compose project name (default workshop-bench)")
    parser.add_argument("--spawner", choices=("local", "fork", "containers"), default=None,
                        help="WORKSHOP_SPAWNER for the stack (default: the configuration's)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="more environment for the hub (e.g. "
                        "WORKSHOP_CONCURRENT_STARTS=8); repeatable")


def stack_options(args: argparse.Namespace) -> str:
    """The options as they were given, for the `reproduce:` line."""
    out = []
    if args.port != DEFAULT_PORT:
        out.append(f"--port {args.port}")
    if args.project != DEFAULT_PROJECT:
        out.append(f"--project {args.project}")
    if args.spawner:
        out.append(f"--spawner {args.spawner}")
    out += [f"--env {e}" for e in args.env]
    return " ".join(out)


def bench_stack(name: str, port: int = DEFAULT_PORT, project: str = DEFAULT_PROJECT,
                spawner: str | None = None, env: list[str] | None = None) -> Stack:
    workdir = ROOT / "tmp" / (name if project == DEFAULT_PROJECT else f"{name}-{project}")
    extra: tuple[Path, ...] = ()
    settings = dict(e.split("=", 1) for e in env or [])
    if spawner == "containers":
        # As an instructor enables them, with the benchmark's own container names.
        extra = (ROOT / "docker-compose.containers.yml",
                 ROOT / "benchmarks/compose.bench-containers.yml")
    elif spawner:
        settings["WORKSHOP_SPAWNER"] = spawner
    if settings:
        override = workdir.parent / f".{project}.env.yml"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text("services:\n  hub:\n    environment:\n" + "".join(
            f"      {k}: {json.dumps(v)}\n" for k, v in settings.items()))
        extra += (override,)
    return Stack(workdir, project=project, port=port, extra_files=extra)


def wait_for_accounts(stack: Stack, names: list[str], timeout: float = 300) -> float:
    """Until users-sync has made every account and finished its first sync (it writes its
    status file then): at 9:00 it did so long ago, while right after the stack starts it
    is still creating accounts and hub users, and a burst would measure that."""
    started = time.monotonic()
    while (stack.exec("id", "-u", names[-1], check=False).returncode != 0
           or stack.exec("test", "-f", "/srv/hub/state/users-sync.json",
                         check=False).returncode != 0):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"users-sync did not make {names[-1]} within {timeout}s")
        time.sleep(1)
    return time.monotonic() - started
