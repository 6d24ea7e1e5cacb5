"""A class rehearsed against a live node: throw-away participants log in at the same
moment, start their servers as the Start button does, run their first cell all at once,
then work a little (pandas, a plot, a save), and are removed again. The figures are the
ones a class feels; the verdict says whether the node holds the class, and which size
would.

The node's side (adding, measuring, removing the throw-away participants) is
services/workshop/rehearsal.py, run in the hub's container through `docker exec`, here
or over SSH (rehearse.py). The browser's side is the benchmarks' (benchmarks/burst_login.py
and its HTTP client), so a rehearsal and a benchmark measure the same thing.
"""

from __future__ import annotations

import json
import math
import shlex
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.burst_login import Burst, all_at_once, burst, first_cell
from provision import capacity
from provision.sizes import SIZES
from tests.e2e.hubclient import HubSession
from workshop.addresses import Addresses

# The goals a class is judged by (issue 15); a rehearsal reports each.
GOALS = {"last server ready s": 30.0, "first server ready s": 3.0,
         "median server ready s": 15.0, "first cell p95 s": 3.0}
# What each participant does after the first cell: a beginners' data lesson in short.
WORK = [
    "import pandas as pd, numpy as np\n"
    "df = pd.DataFrame(np.random.rand(100_000, 10), columns=list('abcdefghij'))\n"
    "print(df.shape)",
    "g = df.groupby((df.a * 10).astype(int)).mean()\nprint(len(g))",
    "import matplotlib.pyplot as plt\nax = df.b.hist(bins=30)\nplt.savefig('rehearsal.png')\n"
    "print('plotted')",
]
NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
     "source": cell, "id": f"cell{i}"} for i, cell in enumerate(WORK)]}


class RehearsalError(RuntimeError):
    """The rehearsal could not run (the node said no, or could not be reached)."""


NodeRun = Callable[[list[str]], str]


def docker_exec(container: str, ssh: Any = None) -> NodeRun:
    """Runs the node's side (`python3 -m workshop.rehearsal ...`) in `container`, on
    this machine or through an SSH client (paramiko) to the node."""

    def run(args: list[str]) -> str:
        cmd = ["docker", "exec", "-w", "/srv/services", container,
               "python3", "-m", "workshop.rehearsal", *args]
        if ssh is None:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                  check=False)
            out, err = done.stdout, done.stderr
        else:
            _, stdout, stderr = ssh.exec_command(shlex.join(cmd), timeout=600)
            out, err = stdout.read().decode(), stderr.read().decode()
        try:
            answer = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RehearsalError(f"the node answered {args[0]} with: {(out + err)[-500:]}"
                                 ) from None
        if "error" in answer:
            raise RehearsalError(f"the node refused {args[0]}: {answer['error']}")
        return json.dumps(answer)

    return run


@dataclass
class Report:
    participants: int
    servers: dict[str, float] = field(default_factory=dict)
    first_cell: dict[str, float] = field(default_factory=dict)
    work: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    goals: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    holds: bool = False
    verdict: str = ""
    fits: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _summary(result: Burst) -> dict[str, float]:
    return {"first": result.percentile(0), "median": result.percentile(0.5),
            "p95": result.percentile(0.95), "last": max(result.ready, default=math.nan),
            "all": result.total, "failures": len(result.failures)}


def _work(sessions: list[HubSession]) -> tuple[list[float], list[str]]:
    """Every participant runs WORK and saves a notebook, all at once; cell times."""
    times: list[float] = []

    def one(session: HubSession) -> None:
        # One kernel each, as a participant with one notebook open: the first cell's
        # goes, this one stays for the memory reading.
        for running in session.server_api("GET", "/kernels").json():
            session.server_api("DELETE", f"/kernels/{running['id']}")
        kernel = session.start_kernel()
        try:
            for cell in WORK:
                started = time.monotonic()
                out = kernel.execute(cell, timeout=120)
                assert not out["error"], out["error"]
                times.append(time.monotonic() - started)
            r = session.save_notebook("rehearsal.ipynb", NOTEBOOK["cells"])
            assert r.status_code in (200, 201), r.text[:200]
        finally:
            kernel.close()

    _, failures = all_at_once(one, sessions, lambda s: s.name, 600)
    return times, failures


def _judge(report: Report, memory: dict[str, Any], hub_side_mb: float) -> None:
    n = report.participants
    people = memory.get("people", {}).values()
    pss = statistics.mean(p["pss_mb"] for p in people) if people else math.nan
    rss = statistics.mean(p["rss_mb"] for p in people) if people else math.nan
    total = memory["mem_total_mb"]
    report.memory = {"pss_per_participant_mb": pss, "rss_per_participant_mb": rss,
                     "node_total_mb": total, "node_available_mb": memory["mem_available_mb"],
                     "per_participant_planned_mb": pss + capacity.WORKING_ALLOWANCE_MB}
    values = {"last server ready s": report.servers.get("last", math.nan),
              "first server ready s": report.servers.get("first", math.nan),
              "median server ready s": report.servers.get("median", math.nan),
              "first cell p95 s": report.first_cell.get("p95", math.nan)}
    report.goals = {k: {"value": v, "goal": GOALS[k], "met": v <= GOALS[k]}
                    for k, v in values.items()}
    # The capacity rule with what this node measured for this class: does the RAM hold
    # the class with its working allowance and the rule's headroom?
    per = report.memory["per_participant_planned_mb"]
    holds_memory = capacity.capacity(total, per, hub_side_mb) >= n
    fits = next((s.name for s in sorted(SIZES.values(), key=lambda s: s.memory_mb)
                 if capacity.capacity(s.memory_mb, per, hub_side_mb) >= n), None)
    report.fits = fits
    report.holds = holds_memory and not report.failures
    why = []
    if report.failures:
        why.append(f"{len(report.failures)} failures")
    if not holds_memory:
        why.append(f"{n} participants at {per:.0f} MB each do not fit its {total} MB")
    missed = [k for k, g in report.goals.items() if not g["met"]]
    report.verdict = (("holds the class" if report.holds else "does not hold the class: "
                       + "; ".join(why))
                      + (f" (slower than the goals: {', '.join(missed)})" if missed else "")
                      + (f"; the smallest size that would: {fits}" if fits
                         else "; none of the sizes in the table would"))


def rehearse(node: NodeRun, addresses: Addresses, n: int,
             say: Callable[[str], None] = print,
             hub_side_mb: float = capacity.HUB_SIDE_MB) -> Report:
    """The whole rehearsal; the throw-away participants are removed whatever happens."""
    report = Report(n)
    added = json.loads(node(["add", str(n)]))
    tag, people = added["tag"], [tuple(p) for p in added["people"]]
    say(f"added {n} throw-away participants (rehearsal-{tag}-001 ...)")
    try:
        probe = HubSession(people[0][0], addresses)
        deadline = time.monotonic() + 60
        while not probe.can_login(people[0][1]):
            if time.monotonic() > deadline:
                raise RehearsalError("the throw-away participants could not log in")
            time.sleep(1)
        say(f"{n} participants log in and start their servers at the same moment ...")
        servers = burst(people, addresses)  # type: ignore[arg-type]
        report.servers = _summary(servers)
        report.failures += servers.failures
        say("... everyone's first cell at once ...")
        cells = first_cell(servers.sessions)
        report.first_cell = _summary(cells)
        report.failures += cells.failures
        say("... some work (pandas, a plot) and a save each ...")
        times, failures = _work(servers.sessions)
        report.failures += failures
        ordered = sorted(times) or [math.nan]
        report.work = {"cell_p50": ordered[len(ordered) // 2],
                       "cell_p95": ordered[min(len(ordered) - 1,
                                               round(0.95 * (len(ordered) - 1)))],
                       "failures": len(failures)}
        _judge(report, json.loads(node(["memory", tag])), hub_side_mb)
    finally:
        say(f"removing the throw-away participants (rehearsal-{tag}-*) ...")
        removed = json.loads(node(["remove", tag]))
        say(f"removed {removed['removed']}, deleted {len(removed['deleted'])} accounts "
            "and their homes")
    return report


def format_report(report: Report) -> str:
    s, c, m = report.servers, report.first_cell, report.memory
    lines = [
        f"rehearsal of {report.participants} participants:",
        f"  servers ready: first {s['first']:.1f} s, median {s['median']:.1f} s, "
        f"last {s['last']:.1f} s ({s['failures']:.0f} failed)",
        f"  first cell, everyone at once: median {c['median']:.1f} s, p95 {c['p95']:.1f} s "
        f"({c['failures']:.0f} failed)",
        f"  work cells: median {report.work['cell_p50']:.1f} s, "
        f"p95 {report.work['cell_p95']:.1f} s",
        f"  memory per participant after the work: PSS {m['pss_per_participant_mb']:.0f} MB,"
        f" RSS {m['rss_per_participant_mb']:.0f} MB; node {m['node_total_mb']} MB, "
        f"{m['node_available_mb']} MB available at the end",
    ]
    lines += [f"  {k}: {g['value']:.1f} (goal <= {g['goal']:g}) "
              + ("ok" if g["met"] else "MISSED") for k, g in report.goals.items()]
    lines += [f"  failure: {f}" for f in report.failures[:10]]
    lines.append(f"verdict: this node {report.verdict}")
    return "\n".join(lines)
