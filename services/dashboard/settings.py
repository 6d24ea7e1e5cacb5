"""Where the dashboard keeps things and whom it trusts, read once from the environment.

JupyterHub sets the JUPYTERHUB_* variables for a managed service; the DASHBOARD_* and
WORKSHOP_* ones come from jupyterhub_config.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

INSTRUCTOR_SCOPE = "custom:dashboard:instructor"


@dataclass(frozen=True)
class Settings:
    prefix: str = "/services/dashboard/"
    state_dir: Path = Path("/srv/hub/state/dashboard")  # events, cookie secret: keep
    output_dir: Path = Path("/srv/hub/tmp/dashboard")  # rendered views: can be rebuilt
    home_root: Path = Path("/home")
    # How saved notebooks are read (contents_source.choose_source): "files" under
    # home_root, "contents" through participants' servers behind the proxy at proxy_url,
    # or "auto": files when home_root exists.
    source: str = "auto"
    proxy_url: str = "http://127.0.0.1:8000"
    users_file: Path = Path("/srv/hub/etc/jupyterhub/users.txt")
    materials_dir: Path = Path("/srv/hub/materials")  # what a hand-out delivers
    ledger_dir: Path = Path("/srv/hub/state/handouts")  # what each participant was given
    instructor_scope: str = INSTRUCTOR_SCOPE
    summary_cells: int = 10  # last cells of each participant in a summary
    summary_lines: int = 25  # each output trimmed to this many lines (head ... tail)
    host: str = "127.0.0.1"
    port: int = 10101

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        url = env.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")
        host, _, port = url.split("://", 1)[-1].rstrip("/").partition(":")
        default = cls()
        return cls(
            prefix=env.get("JUPYTERHUB_SERVICE_PREFIX", default.prefix),
            state_dir=Path(env.get("DASHBOARD_STATE_DIR", default.state_dir)),
            output_dir=Path(env.get("DASHBOARD_OUTPUT_DIR", default.output_dir)),
            home_root=Path(env.get("WORKSHOP_HOME_ROOT", default.home_root)),
            source=env.get("DASHBOARD_SOURCE", default.source),
            proxy_url=env.get("DASHBOARD_PROXY_URL", default.proxy_url),
            users_file=Path(env.get("WORKSHOP_USERS_FILE", default.users_file)),
            materials_dir=Path(env.get("WORKSHOP_MATERIALS_DIR", default.materials_dir)),
            ledger_dir=Path(env.get("WORKSHOP_LEDGER_DIR", default.ledger_dir)),
            summary_cells=int(env.get("DASHBOARD_SUMMARY_CELLS", default.summary_cells)),
            summary_lines=int(env.get("DASHBOARD_SUMMARY_LINES", default.summary_lines)),
            host=host or default.host,
            port=int(port or default.port),
        )
