"""Memory of an idle participant (their server + one started Python kernel), and of the
hub + proxy + services, measured inside the running container.

K participants log in, start their server and a kernel, run one cell, then sit idle.
Each process is counted once: RSS (what `top` shows; shared libraries counted in every
process) and PSS (shared pages divided among their users, so per-participant PSS adds
up to the real total). The capacity advice in the Readme uses RSS, the pessimistic one.

    .venv/bin/python benchmarks/memory_per_user.py            # K = 5
    .venv/bin/python benchmarks/memory_per_user.py --users 10 --idle 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.burst_login import participants
from tests.e2e.compose_stack import ROOT, Stack
from tests.e2e.hubclient import HubSession

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
                 "rss": p.info["memory_info"].rss, "pss": full.pss})
print(json.dumps(rows))
"""

ROLES = {  # how the hub's own processes are recognised, in order
    "proxy": "configurable-http-proxy",
    "dashboard": "-m dashboard",
    "users-sync": "workshop.usersync",
    "idle-culler": "jupyterhub_idle_culler",
    "hub": "jupyterhub --config",
}
MB = 1024 * 1024


def measure(stack: Stack, users: list[str]) -> list[dict]:
    rows = []
    for user in ["root", *users]:
        out = stack.compose("exec", "-T", "-u", user, "hub", "python3", "-c", PROBE).stdout
        rows += json.loads(out)
    return rows


def summarize(rows: list[dict], users: list[str]) -> tuple[dict, dict]:
    per_user = {u: {"rss": 0, "pss": 0, "processes": 0} for u in users}
    base = {role: {"rss": 0, "pss": 0} for role in ROLES}
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
    return per_user, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--idle", type=float, default=20, help="seconds of idling first")
    args = parser.parse_args()
    people = participants(args.users, prefix="mem")
    stack = Stack(ROOT / "tmp" / "bench-memory", project="workshop-bench", port=920)
    stack.down()
    stack.prepare("".join(f"{n}:{p}\n" for n, p in people), {})
    print(f"stack healthy after {stack.up():.1f}s", flush=True)
    kernels = []
    try:
        for name, password in people:
            session = HubSession(name)
            session.login(password)
            session.spawn()
            session.open_lab()
            kernel = session.start_kernel()
            assert kernel.execute("print(1 + 1)")["stdout"].strip() == "2"
            kernels.append(kernel)
        time.sleep(args.idle)
        names = [n for n, _ in people]
        per_user, base = summarize(measure(stack, names), names)
    finally:
        for kernel in kernels:
            kernel.close()
        stack.down()

    print("\nidle participant = JupyterLab server + one Python kernel (after one cell)")
    print("| participant | processes | RSS MB | PSS MB |")
    print("|---|---|---|---|")
    for name, m in per_user.items():
        print(f"| {name} | {m['processes']} | {m['rss'] / MB:.0f} | {m['pss'] / MB:.0f} |")
    rss = [m["rss"] / MB for m in per_user.values()]
    pss = [m["pss"] / MB for m in per_user.values()]
    print(f"| **mean** | | **{statistics.mean(rss):.0f}** | **{statistics.mean(pss):.0f}** |")
    print("\n| hub side | RSS MB | PSS MB |")
    print("|---|---|---|")
    for role, m in base.items():
        print(f"| {role} | {m['rss'] / MB:.0f} | {m['pss'] / MB:.0f} |")
    total_rss = sum(m["rss"] for m in base.values()) / MB
    total_pss = sum(m["pss"] for m in base.values()) / MB
    print(f"| **total** | **{total_rss:.0f}** | **{total_pss:.0f}** |")
    print(f"\nreproduce: .venv/bin/python benchmarks/memory_per_user.py --users {args.users} "
          f"--idle {args.idle:g}")


if __name__ == "__main__":
    main()
