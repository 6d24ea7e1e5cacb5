"""The spawner: each participant's JupyterLab runs in the container as their own uid."""

from __future__ import annotations

import asyncio

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from .accounts import ensure_system_user
from .materials import Ledger, hand_out


class WorkshopSpawner(LocalProcessSpawner):
    """LocalProcessSpawner that first makes sure the participant's account, home and
    materials are in place. The users-sync service usually did the account already; doing
    it here too closes the gap between a users.txt edit and the next sync."""

    home_root = Unicode("/home", help="Where participants' homes are.").tag(config=True)
    materials_dir = Unicode(
        "/srv/hub/materials", help="Files handed out into every home (never overwriting)."
    ).tag(config=True)
    ledger_dir = Unicode(
        "/srv/hub/state/handouts", help="Private record of what each participant was given."
    ).tag(config=True)

    async def start(self):  # type: ignore[override]
        name = self.user.name
        account = await asyncio.to_thread(ensure_system_user, name, self.home_root)
        report = await asyncio.to_thread(
            hand_out, account, self.materials_dir, Ledger(self.ledger_dir)
        )
        if report.copied or report.renamed:
            self.log.info("materials for %s: copied %s, renamed %s", name, report.copied,
                          report.renamed)
        return await super().start()
