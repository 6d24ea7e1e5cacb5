"""Run the dashboard the way JupyterHub starts it: `python -m dashboard`."""

from __future__ import annotations

import logging

from waitress import serve

from .app import create_app
from .settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="[%(levelname).1s %(asctime)s dashboard] %(message)s")
    settings = Settings.from_env()
    app = create_app(settings)
    logging.getLogger("dashboard").info("listening on %s:%d%s", settings.host,
                                        settings.port, settings.prefix)
    # One process, a few threads: the render worker (later) lives in this process.
    serve(app, host=settings.host, port=settings.port, threads=8, ident="dashboard")


if __name__ == "__main__":
    main()
