# Jupyter server configuration for every participant's server (mounted at /etc/jupyter).
#
# The save hook: every notebook save posts a `save-notebook` event to the dashboard with
# the participant's own JupyterHub token, so the instructor's page updates within seconds.
# A save must never wait for, or fail because of, the dashboard: events leave from one
# background thread (in order), each POST gives up after 1 s, and what did not arrive is
# sent again once the dashboard is back (EventPoster). jupyter_server turns an exception
# in a post-save hook into a failed save (500), so nothing here may raise.
# ruff: noqa: F821  (`c` is provided by Jupyter when it loads this file)

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from datetime import UTC, datetime

EVENT_TIMEOUT = 1.0  # seconds per attempt; the save itself is long done
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between attempts while the dashboard is away
log = logging.getLogger("workshop.save-hook")


class EventPoster:
    """Delivers save events to the dashboard from a single daemon thread.

    What the dashboard could not take (down, restarting) is sent again, oldest first,
    after 1, 2, 4 ... up to 30 s: nothing is lost while it restarts. Only the newest save
    of each notebook waits (a later save makes an earlier event of the same notebook
    moot), at most `backlog` notebooks. An event the dashboard refuses as such (4xx other
    than 429) is not sent again.
    """

    def __init__(self, url: str, token: str, backlog: int = 100) -> None:
        self.url = url
        self.token = token
        self.backlog = backlog
        self.pending: OrderedDict[str, dict] = OrderedDict()  # path -> newest event
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None

    def post(self, event: dict) -> None:
        with self.cond:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="save-events",
                                               daemon=True)
                self.thread.start()
            self.pending.pop(event["path"], None)
            self.pending[event["path"]] = event
            while len(self.pending) > self.backlog:
                dropped, _ = self.pending.popitem(last=False)
                log.warning("dashboard unreachable, save event for %s dropped", dropped)
            self.cond.notify()

    def _send(self, event: dict) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(event).encode(), method="POST",
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=EVENT_TIMEOUT) as response:
            response.read()

    def _run(self) -> None:
        pause = 0.0
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                path, event = next(iter(self.pending.items()))
            try:
                self._send(event)
            except urllib.error.HTTPError as e:
                if e.code != 429 and 400 <= e.code < 500:  # refused for what it is
                    log.warning("save event for %s refused: %s", path, e)
                    self._done(path, event)
                    continue
                pause = self._later(path, e, pause)
            except Exception as e:  # the dashboard being down must never matter here
                pause = self._later(path, e, pause)
            else:
                self._done(path, event)
                pause = 0.0

    def _done(self, path: str, event: dict) -> None:
        with self.cond:
            if self.pending.get(path) is event:  # not saved again meanwhile
                del self.pending[path]

    def _later(self, path: str, error: Exception, pause: float) -> float:
        if not pause:
            log.warning("save event for %s not delivered yet (%s): trying again", path, error)
        pause = min(RETRY_MAX, max(RETRY_FIRST, 2 * pause))
        time.sleep(pause)
        return pause


POSTER = None
if os.environ.get("WORKSHOP_EVENTS_URL") and os.environ.get("JUPYTERHUB_API_TOKEN"):
    POSTER = EventPoster(os.environ["WORKSHOP_EVENTS_URL"], os.environ["JUPYTERHUB_API_TOKEN"])


def post_save_hook(model, os_path, contents_manager, **kwargs):
    """Report a saved notebook to the dashboard (see the top of this file)."""
    try:
        if POSTER is None or model.get("type") != "notebook":
            return
        POSTER.post({
            "type": "save-notebook",
            "user": os.environ.get("JUPYTERHUB_USER", ""),
            "filename": model["name"],
            "path": model["path"],
            "timestamp": datetime.now(UTC).isoformat(),
        })
    except Exception as e:
        log.warning("save hook skipped for %s: %s", os_path, e)


c.FileContentsManager.post_save_hook = post_save_hook

# Faster starts when the whole class logs in at once: no language servers are installed,
# and nothing here uses the classic notebook shim.
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False, "notebook_shim": False}
