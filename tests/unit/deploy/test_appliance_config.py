"""deploy/kubernetes/appliance_config.py: the appliance's hub config, read from its source.

The generator takes roles, scopes, the dashboard's static settings and the culler's flags
from etc/jupyterhub/jupyterhub_config.py (which only runs inside the appliance); what is
plain data is read, the rest skipped, and a config that changed shape is one clear error.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from dashboard.settings import INSTRUCTOR_SCOPE

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "deploy/kubernetes"))
ac = importlib.import_module("appliance_config")

HUB_CONFIG_SOURCE = """\
import sys
from dashboard.settings import INSTRUCTOR_SCOPE
ACCESS = "access:services!service=dashboard"
TIMEOUT = int("10")
c.JupyterHub.custom_scopes = {INSTRUCTOR_SCOPE: {"description": "d"}}
c.JupyterHub.load_roles = [
    {"name": "instructor", "groups": ["instructors"], "scopes": [INSTRUCTOR_SCOPE, ACCESS]},
    {"name": "dashboard", "services": ["dashboard"], "scopes": [f"read:{'servers'}"]},
    {"name": "users-sync", "services": ["users-sync"], "scopes": ["admin:users"]},
]
c.JupyterHub.services = [
    {"name": "dashboard", "url": "http://127.0.0.1:1", "command": [sys.executable],
     "display": False, "oauth_no_confirm": True, "info": {"k": ACCESS}},
    {"name": "idle-culler", "command": [sys.executable, f"--timeout={TIMEOUT}",
                                        "--cull-every=60", "--concurrency=2"]},
]
"""


def test_reads_plain_data_and_skips_the_rest(tmp_path):
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(HUB_CONFIG_SOURCE)
    appliance = ac.read_appliance(path)
    assert appliance.custom_scopes == {INSTRUCTOR_SCOPE: {"description": "d"}}
    assert appliance.dashboard == {"display": False, "oauth_no_confirm": True,
                                   "info": {"k": "access:services!service=dashboard"}}
    assert appliance.culler_flags == {"cull-every": "60", "concurrency": "2"}
    roles = ac.k8s_roles(appliance.roles)
    assert roles == {
        "instructor": {"groups": ["instructors"],
                       "scopes": [INSTRUCTOR_SCOPE, "access:services!service=dashboard"]},
        "dashboard": {"services": ["dashboard"], "scopes": ["read:servers"]},
    }


@pytest.mark.parametrize("change, message", [
    ('c.JupyterHub.load_roles = [', "c.JupyterHub.load_roles = sorted(ROLES) or ["),
    ('c.JupyterHub.custom_scopes = {', "c.JupyterHub.other = {"),
    ('{"name": "dashboard", "url"', '{"name": "board", "url"'),
])
def test_a_changed_hub_config_is_one_readable_error(tmp_path, change, message):
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(HUB_CONFIG_SOURCE.replace(change, message))
    with pytest.raises(ac.ConfigError) as e:
        ac.read_appliance(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_the_real_hub_config_is_read():
    appliance = ac.read_appliance()
    assert appliance.dashboard["oauth_client_allowed_scopes"] == [INSTRUCTOR_SCOPE]
    assert {"user", "server", "instructor", "dashboard"} <= set(ac.k8s_roles(appliance.roles))
