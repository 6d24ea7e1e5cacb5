"""Memory of an idle participant (their server + one started Python kernel), and of the
hub + proxy + services, measured inside the running container.

K participants log in, start their server and a kernel, run one cell, then sit idle.
Each process is counted once: RSS (what `top` shows; shared libraries counted in every
process) and PSS (shared pages divided among their users, so per-participant PSS adds
up to the real total). The capacity advice in the Readme uses RSS, the pessimistic one.

    .venv/bin/python benchmarks/memory_per_user.py            # K = 5
    .venv/bin/python benchmarks/memory_per_user.py --users 10 --idle 30
    .venv/bin/python benchmarks/memory_per_user.py --port 860 --project workshop-fork-bench \
        --spawner fork --use 600

`--use SECONDS` then keeps everybody lightly busy for that long (a small cell every
`--every` seconds each: lists, dicts, strings, a module or two imported, as a class typing
along does) and measures again: shared pages get dirtied as Python touches its objects
(reference counts, the garbage collector), so PSS grows back towards RSS; by how much is
the figure the capacity rule needs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from benchmarks.benchstack import add_stack_options, bench_stack, stack_options
from benchmarks.burst_login import participants
from provision.rehearsal import WORK
from tests.e2e import hubclient
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import Kernel

# Runs inside the container (psutil is there). PSS needs /proc/<pid>/smaps, which even
# root may not read for another uid without CAP_SYS_PTRACE (Docker drops it), so the
# probe runs once as root and once as each participant, each seeing its own processes.
PROBE = r"""
import json, os, psutil
rows = []
for p in psutil.process_iter(["pid", "username", "uids", "cmdline", "memory_info"]):
    if p.info["uids"].real != os.getuid() or p.pid == os.getpid():
        continue  # another user's, or this probe itself
    try:
        full = p.memory_full_info()
    except psutil.Error:
        continue
    cmd = " ".join(p.info["cmdline"] or [])
    rows.append({"user": p.info["username"], "cmd": cmd[:200],
                 "rss": p.info["memory_info"].rss, "pss": full.pss, "uss": full.uss})
print(json.dumps(rows))
"""

ROLES = {  # how the hub's own processes are recognised, in order
    "fork server (servers)": "workshop.forkserver --role server",
    "fork server (kernels)": "workshop.forkserver --role kernel",
    "proxy": "configurable-http-proxy",
    "dashboard": "-m dashboard",
    "users-sync": "workshop.usersync",
    "idle-culler": "jupyterhub_idle_culler",
    "hub": "jupyterhub --config",
}
MB = 1024 * 1024
KINDS = ("rss", "pss", "uss")
# One step of light use: what a participant's cells do in a beginners' class, different
# each time so the kernel's own objects change (and its shared pages with them).
LIGHT_CELL = """
import collections, json, random, statistics
_words = [random.choice("abcdefgh") * random.randint(1, 9) for _ in range(2000)]
_counts = collections.Counter(_words)
_data = {{w: [len(w) * i for i in range(20)] for w in _counts}}
print({step}, len(json.dumps(_data)), round(statistics.mean(map(len, _words)), 2))
"""


def measure(stack: Stack, users: list[str]) -> list[dict]:
    rows = []
    for user in ["root", *users]:
        out = stack.compose("exec", "-T", "-u", user, "hub", "python3", "-c", PROBE).stdout
        rows += json.loads(out)
    return rows


def summarize(rows: list[dict], users: list[str]) -> tuple[dict, dict]:
    per_user = {u: {"rss": 0, "pss": 0, "uss": 0, "processes": 0} for u in users}
    base = {role: {"rss": 0, "pss": 0, "uss": 0} for role in ROLES}
    for row in rows:
        if row["user"] in per_user:
            entry = per_user[row["user"]]
            entry["processes"] += 1
        else:
            role = next((r for r, needle in ROLES.items() if needle in row["cmd"]), None)
            if role is None:
                continue
            entry = base[role]
        entry["rss"] += row["rss"]
        entry["pss"] += row["pss"]
        entry["uss"] += row["uss"]
    return per_user, base


def light_use(kernels: list[Kernel], seconds: float, every: float) -> int:
    """Everyone runs a small cell every `every` seconds for `seconds`; steps done."""
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        step += 1
        started = time.monotonic()
        for kernel in kernels:
            out = kernel.execute(LIGHT_CELL.format(step=step))
            assert not out["error"], out
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return step


def print_tables(title: str, per_user: dict, base: dict) -> None:
    print(f"\n{title}")
    print("| participant | processes | RSS MB | PSS MB | USS MB |")
    print("|---|---|---|---|---|")
    for name, m in per_user.items():
        print(f"| {name} | {m['processes']} | {m['rss'] / MB:.0f} | {m['pss'] / MB:.0f} | "
              f"{m['uss'] / MB:.0f} |")
    mean = {k: statistics.mean(m[k] / MB for m in per_user.values()) for k in KINDS}
    print(f"| **mean** | | **{mean['rss']:.0f}** | **{mean['pss']:.0f}** | "
          f"**{mean['uss']:.0f}** |")
    print("\n| hub side | RSS MB | PSS MB | USS MB |")
    print("|---|---|---|---|")
    for role, m in base.items():
        print(f"| {role} | {m['rss'] / MB:.0f} | {m['pss'] / MB:.0f} | {m['uss'] / MB:.0f} |")
    total = {k: sum(m[k] for m in base.values()) / MB for k in KINDS}
    print(f"| **total** | **{total['rss']:.0f}** | **{total['pss']:.0f}** | "
          f"**{total['uss']:.0f}** |")


def growth(before: dict, after: dict, names: list[str]) -> str:
    """How each kind of memory grew per participant, mean (min, max), MB."""
    parts = []
    for kind in KINDS:
        grew = [(after[n][kind] - before[n][kind]) / MB for n in names]
        parts.append(f"{kind.upper()} +{statistics.mean(grew):.1f} "
                     f"({min(grew):.1f} .. {max(grew):.1f})")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--idle", type=float, default=20, help="seconds of idling first")
    parser.add_argument("--use", type=float, default=0,
                        help="then seconds of light use, and measure again")
    parser.add_argument("--every", type=float, default=30,
                        help="seconds between a participant's cells during --use")
    parser.add_argument("--work", action="store_true",
                        help="then everyone runs the rehearsal's lesson cells (pandas, a "
                        "100 000 x 10 DataFrame, a plot), and measure again: what the "
                        "working allowance is")
    add_stack_options(parser)
    args = parser.parse_args()
    people = participants(args.users, prefix="mem")
    stack = bench_stack("bench-memory", args.port, args.project, args.spawner,
                        args.env)
    stack.down()
    stack.prepare("".join(f"{n}:{p}\n" for n, p in people), {})
    print(f"stack healthy after {stack.up():.1f}s", flush=True)
    kernels = []
    names = [n for n, _ in people]
    used = worked = None
    try:
        for name, password in people:
            kernel = hubclient.started(name, password).start_kernel()
            assert kernel.execute("print(1 + 1)")["stdout"].strip() == "2"
            kernels.append(kernel)
        time.sleep(args.idle)
        idle = summarize(measure(stack, names), names)
        if args.use:
            steps = light_use(kernels, args.use, args.every)
            used = (steps, summarize(measure(stack, names), names))
        if args.work:
            before = summarize(measure(stack, names), names)
            for kernel in kernels:
                for cell in WORK:
                    out = kernel.execute(cell, timeout=300)
                    assert not out["error"], out
            worked = (before, summarize(measure(stack, names), names))
    finally:
        for kernel in kernels:
            kernel.close()
        stack.down()

    print_tables("idle participant = JupyterLab server + one Python kernel (after one cell)",
                 *idle)
    if used is not None:
        steps, after = used
        print_tables(f"after {args.use:g} s of light use ({steps} cells each)", *after)
        print(f"\nlight use grew each participant by {growth(idle[0], after[0], names)}")
    if worked is not None:
        before, after = worked
        print_tables("after the lesson's cells (pandas, 100 000 x 10 DataFrame, a plot)",
                     *after)
        print(f"\nthe lesson's work grew each participant by "
              f"{growth(before[0], after[0], names)}")
    options = f" --use {args.use:g} --every {args.every:g}" if args.use else ""
    options += " --work" if args.work else ""
    print(f"\nreproduce: .venv/bin/python benchmarks/memory_per_user.py --users {args.users} "
          f"--idle {args.idle:g}{options} {stack_options(args)}".rstrip())


if __name__ == "__main__":
    main()
