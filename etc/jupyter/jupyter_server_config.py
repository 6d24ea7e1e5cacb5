# Jupyter server configuration for every participant's server (mounted at /etc/jupyter).
#
# The save hook: every notebook save posts a `save-notebook` event to the dashboard with
# the participant's own JupyterHub token, so the instructor's page updates within seconds.
# A save must never wait for, or fail because of, the dashboard: events leave from one
# background thread (in order), each POST gives up after 1 s, and failures are only
# logged. jupyter_server turns an exception in a post-save hook into a failed save (500),
# so nothing here may raise.
# ruff: noqa: F821  (`c` is provided by Jupyter when it loads this file)

import json
import logging
import os
import queue
import threading
import urllib.request
from datetime import UTC, datetime

EVENT_TIMEOUT = 1.0  # seconds; then the event is dropped and the save is long done
log = logging.getLogger("workshop.save-hook")


class EventPoster:
    """Delivers events to the dashboard from a single daemon thread."""

    def __init__(self, url: str, token: str, backlog: int = 100) -> None:
        self.url = url
        self.token = token
        self.queue: queue.Queue[dict] = queue.Queue(maxsize=backlog)
        self.thread: threading.Thread | None = None

    def post(self, event: dict) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="save-events", daemon=True)
            self.thread.start()
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            log.warning("dashboard unreachable, save event for %s dropped", event["path"])

    def _send(self, event: dict) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(event).encode(), method="POST",
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=EVENT_TIMEOUT) as response:
            response.read()

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            try:
                self._send(event)
            except Exception as e:  # the dashboard being down must never matter here
                log.warning("save event for %s not delivered: %s", event["path"], e)


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
