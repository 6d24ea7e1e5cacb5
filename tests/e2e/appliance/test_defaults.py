"""Workshop defaults: autosave every 30 s, materials on first spawn, the idle culler."""

from __future__ import annotations

import os

from tests.e2e.appliance.conftest import MATERIALS, PASSWORDS
from tests.e2e.compose_stack import Stack
from tests.e2e.hubclient import HubSession, within


def test_autosave_every_30s_through_settings_overrides(stack: Stack, alice: HubSession):
    r = alice.http.get(f"{alice.server_url}/lab/api/settings/"
                       "@jupyterlab/docmanager-extension:plugin", timeout=30)
    assert r.status_code == 200, r.text
    # Overrides become the schema's defaults, which the participant may still change.
    defaults = r.json()["schema"]["properties"]
    assert defaults["autosave"]["default"] is True
    assert defaults["autosaveInterval"]["default"] == 30


def test_materials_arrive_on_first_spawn_and_never_overwrite(stack: Stack):
    home = stack.home / "erin"
    # The users sync made erin's home before her first spawn; she already has her own
    # welcome.md there (say, from an earlier workshop).
    within(10, home.is_dir, "users-sync makes erin's home")
    uid = stack.uid_of("erin")
    mine = home / "welcome.md"
    mine.write_text("my own notes\n")
    os.chown(mine, uid, uid)

    erin = HubSession("erin")
    erin.login(PASSWORDS["erin"])
    erin.spawn()

    assert mine.read_text() == "my own notes\n"
    assert (home / "welcome (updated).md").read_text() == MATERIALS["welcome.md"]
    copied = home / "exercise.py"
    assert copied.read_text() == MATERIALS["exercise.py"]
    assert copied.stat().st_uid == uid

    # Deleting a handed-out file is the participant's choice: a new spawn does not undo it.
    copied.unlink()
    erin.hub_api("DELETE", f"/users/{erin.name}/server")
    within(60, lambda: not erin.user_model()["servers"], "erin's server stops")
    erin.spawn()
    assert not copied.exists()


def test_idle_culler_runs_as_a_hub_service(stack: Stack):
    ps = stack.exec("pgrep", "-af", "jupyterhub_idle_culler").stdout
    assert "--timeout=10800" in ps
    assert "Starting managed service idle-culler" in stack.logs()
