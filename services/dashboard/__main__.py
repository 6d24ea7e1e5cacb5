"""Run the dashboard the way JupyterHub starts it: `python -m dashboard`."""

from __future__ import annotations

import logging
import socket

from .app import create_app
from .httpserver import BACKLOG, make_server
from .settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="[%(levelname).1s %(asctime)s dashboard] %(message)s")
    settings = Settings.from_env()
    app = create_app(settings)
    sock = socket.create_server((settings.host, settings.port), backlog=BACKLOG)
    server = make_server(app, sock)
    logging.getLogger("dashboard").info(
        "listening on %s:%d%s (at most %d connections)", settings.host, settings.port,
        settings.prefix, server.adj.connection_limit)
    # One process, a few threads: the render worker lives in this process too.
    server.run()


if __name__ == "__main__":
    main()
