"""Where the hub's time goes during a burst: py-spy samples the hub process (from the
host, by its host pid) while the burst runs, and the samples are summed up by function
(self time) and by request handler (inclusive time).

    py-spy: python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy
    .venv/bin/python benchmarks/burst_login.py --profile-hub /tmp/pyspy/bin/py-spy ...

Only samples of the thread holding the GIL are taken (--gil): their number over the
sampling rate is the time the hub's Python ran, the event loop's and its helper threads'
together; the rest of the burst the hub waited (on participants' servers, the proxy, the
disk, or for a CPU on a busy machine).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.e2e.compose_stack import Stack

RATE = 100  # samples per second
# py-spy's frames read "function (path/to/file.py:line)"; a request handler's method is a
# get/post/... in a handlers module.
FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")
VERBS = {"get", "post", "put", "delete", "patch"}


def _where(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m["func"], m["file"]


def hub_pid(stack: Stack) -> int:
    """The hub's pid on the host: the child of the container's init (tini)."""
    container = stack.compose("ps", "-q", "hub").stdout.strip()
    init = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container],
                          capture_output=True, text=True, check=True).stdout.strip()
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    for pid in children:
        if "jupyterhub" in Path(f"/proc/{pid}/cmdline").read_text():
            return int(pid)
    raise RuntimeError("no hub process found")


class HubProfile:
    def __init__(self, pyspy: str, stack: Stack, out: Path) -> None:
        self.pyspy, self.stack, self.out = pyspy, stack, out
        self.proc: subprocess.Popen[bytes] | None = None
        self.seconds = 0.0

    def __enter__(self) -> HubProfile:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.pyspy, "record", "--pid", str(hub_pid(self.stack)), "--rate", str(RATE),
             "--format", "raw", "--output", str(self.out), "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started = time.monotonic()
        time.sleep(1)  # py-spy attaches
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.seconds = time.monotonic() - self.started
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        self.proc.wait(60)

    def summary(self, top: int = 12) -> str:
        own: Counter[str] = Counter()
        handlers: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_where(f) for f in stack.split(";")]
            func, file = frames[-1]
            own[f"{func} ({'/'.join(file.split('/')[-2:])})"] += n
            for name in {f"{func} ({file})" for func, file in frames  # Class.method
                         if func.rsplit(".", 1)[-1] in VERBS and "handlers" in file}:
                handlers[name] += n
        busy = total / RATE
        lines = [f"hub busy {busy:.1f} s of {self.seconds:.1f} s "
                 f"({100 * busy / max(self.seconds, 1e-9):.0f} % of one core)",
                 "  most time in (self):"]
        lines += [f"    {100 * n / max(total, 1):5.1f} %  {f}" for f, n in own.most_common(top)]
        lines.append("  by request handler (inclusive):")
        lines += [f"    {100 * n / max(total, 1):5.1f} %  {h}"
                  for h, n in handlers.most_common(top)]
        return "\n".join(lines)
