"""Keep a hub-managed service running: `python -m workshop.supervise -- COMMAND...`.

JupyterHub notices a managed service that died only on its next poll (every 30 s, not
configurable per service), so a dashboard that crashes is gone for up to half a minute:
the instructor's board freezes and every save event of the class in that time is lost.
This small parent starts COMMAND again at once (then after 1, 2, 4 ... up to 30 s while it
keeps dying within a minute of its start, so a broken configuration does not spin), and
passes SIGTERM/SIGINT on to it: when the hub stops the service, both end.

It holds no secret of its own: COMMAND inherits the environment the hub gave the service.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("supervise")

QUICK_DEATH = 60.0  # a child that lived shorter than this counts as crashing
FIRST_PAUSE, MAX_PAUSE = 1.0, 30.0
STOP_GRACE = 20.0  # seconds the child gets to finish after SIGTERM, then SIGKILL


class Supervisor:
    def __init__(self, command: Sequence[str], *,
                 spawn: Callable[[Sequence[str]], subprocess.Popen] = subprocess.Popen,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not command:
            raise ValueError("nothing to supervise: give a command after --")
        self.command = list(command)
        self.spawn, self.sleep = spawn, sleep
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.restarts = 0

    def stop(self, signum: int = signal.SIGTERM, *_: object) -> None:
        """Pass the signal on; the loop ends once the child is gone."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        pause = 0.0
        while not self.stopping:
            started = time.monotonic()
            self.child = self.spawn(self.command)
            code = self._wait()
            if self.stopping:
                return code
            lived = time.monotonic() - started
            pause = 0.0 if lived >= QUICK_DEATH else min(MAX_PAUSE, max(FIRST_PAUSE, 2 * pause))
            self.restarts += 1
            log.error("%s exited with %s after %.1f s; starting it again%s",
                      self.command[-1], code, lived, f" in {pause:.0f} s" if pause else "")
            if pause:
                self.sleep(pause)
        return 0

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            try:
                return self.child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                if self.stopping and self._grace_over():
                    self.child.kill()

    def _grace_over(self) -> bool:
        since = getattr(self, "_stop_since", None)
        if since is None:
            self._stop_since = time.monotonic()
            return False
        return time.monotonic() - since > STOP_GRACE


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    logging.basicConfig(level=logging.INFO,
                        format="[%(levelname).1s %(asctime)s supervise] %(message)s")
    supervisor = Supervisor(args)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
