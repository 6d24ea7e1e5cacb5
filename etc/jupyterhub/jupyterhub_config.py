# JupyterHub configuration of the workshop appliance.
#
# Read inside the container (mounted from etc/jupyterhub/). Every knob an instructor may
# want is an environment variable set in docker-compose.yml; the rest is the design:
#   - the hub listens on 127.0.0.1 only; nginx terminates TLS in front of it;
#   - users.txt is the list of people (see users.txt.sample), live-reloaded;
#   - each participant's JupyterLab runs as their own Linux user, home /home/<name> (0700);
#   - the dashboard, the users sync and the idle culler are hub-managed services, each
#     with a role granting only what it needs.
# ruff: noqa: F821  (`c` is provided by JupyterHub when it loads this file)

import os
import sys
from pathlib import Path

SERVICES = "/srv/services"
sys.path.insert(0, SERVICES)

from dashboard.settings import INSTRUCTOR_SCOPE  # noqa: E402
from workshop.addresses import Addresses  # noqa: E402
from workshop.authenticator import UsersFileAuthenticator  # noqa: E402
from workshop.hubdb import use_wal  # noqa: E402
from workshop.keys import persistent_secret  # noqa: E402
from workshop.spawner import WorkshopSpawner  # noqa: E402

STATE = Path("/srv/hub/state")  # named volume: hub database and secrets
USERS_FILE = os.environ.get("WORKSHOP_USERS_FILE", "/srv/hub/etc/jupyterhub/users.txt")
# Loopback ports below 1024 and the public URL (services/workshop/addresses.py).
ADDRESSES = Addresses.from_env()
MATERIALS = "/srv/hub/materials"  # handed out at spawn and from the dashboard
LEDGER = str(STATE / "handouts")  # what each participant was given (one ledger for both)
IDLE_TIMEOUT = int(os.environ.get("WORKSHOP_IDLE_TIMEOUT", 3 * 3600))


def service_env(**extra: str) -> dict[str, str]:
    where = {k: os.environ[k] for k in ("WORKSHOP_PORT", "WORKSHOP_PUBLIC_URL",
                                        "WORKSHOP_SUBDOMAINS") if k in os.environ}
    return {"PYTHONPATH": SERVICES, "WORKSHOP_USERS_FILE": USERS_FILE, **where, **extra}


# -- network: all on loopback, ports only root may bind ------------------------------------
c.JupyterHub.bind_url = ADDRESSES.proxy_url
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = ADDRESSES.hub_port
c.ConfigurableHTTPProxy.api_url = ADDRESSES.proxy_api_url
c.ConfigurableHTTPProxy.auth_token = persistent_secret(STATE / "proxy_token")
# Every participant's server, and the dashboard, on an origin of its own (JupyterHub's
# security model: users must never serve pages on the hub's origin). Without a wildcard
# name and certificate (WORKSHOP_SUBDOMAINS=no) instructors may not enter participants'
# servers at all (see the instructor role below).
if ADDRESSES.subdomains:
    c.JupyterHub.subdomain_host = ADDRESSES.public_url

# -- state ------------------------------------------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{STATE}/jupyterhub.sqlite"
use_wal()  # commits that do not stall the hub's loop on the disk (workshop/hubdb.py)
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# -- who may log in: users.txt ------------------------------------------------------------
c.JupyterHub.authenticator_class = UsersFileAuthenticator
c.UsersFileAuthenticator.users_file = USERS_FILE
# A whole class logging in through the form at the same moment must all get in: with 16
# waiting checks, 9 of 60 simultaneous logins were refused with 429 even with plain
# passwords (benchmarks/burst_login.py: the hub's loop takes in every POST before it sees
# a check finish). 100 lets the appliance's largest class wait its turn; a flood still
# gets 429 beyond that.
c.UsersFileAuthenticator.max_waiting_checks = 100

# -- participants' servers ---------------------------------------------------------------
c.JupyterHub.spawner_class = WorkshopSpawner
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
# WorkshopHomes: the preparation both spawners share (account, home, materials).
c.WorkshopHomes.materials_dir = MATERIALS
c.WorkshopHomes.ledger_dir = LEDGER
if "WORKSHOP_CONCURRENT_STARTS" in os.environ:  # servers starting at once (spawner.py)
    c.WorkshopHomes.concurrent_starts = int(os.environ["WORKSHOP_CONCURRENT_STARTS"])
c.Spawner.environment = {
    # Where the save hook (etc/jupyter/jupyter_server_config.py) posts its events.
    "WORKSHOP_EVENTS_URL": f"{ADDRESSES.dashboard_url}/services/dashboard/events",
}
# A whole class logs in at once at 9:00: give slow starts room instead of failing them.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
# Participants' servers (and the kernels they start) run at a lower CPU priority than the
# hub, the proxy and the dashboard, which everybody's requests go through: 60 servers
# starting at once must not starve the hub's event loop (benchmarks/burst_login.py).
c.Spawner.cmd = ["nice", "-n", "10", "jupyterhub-singleuser"]

# -- which spawner: fork (default), local, containers --------------------------------------
# fork: every participant's server and kernels are forked from preloaded processes
# (services/workshop/forkspawner.py): a second to start, their imports shared.
# local: the classic spawner, one `jupyterhub-singleuser` process executed per participant.
# containers (docker-compose.containers.yml sets it, with the Docker socket): each
# participant's server in a container of its own, with memory and CPU limits
# (WORKSHOP_MEM_LIMIT, WORKSHOP_CPU_LIMIT); see services/workshop/containers.py.
SPAWNER = os.environ.get("WORKSHOP_SPAWNER", "fork")
if SPAWNER == "containers":
    from workshop.containers import WorkshopDockerSpawner, config_from_env

    c.JupyterHub.spawner_class = WorkshopDockerSpawner
    for _name, _value in config_from_env(os.environ).items():
        setattr(c.WorkshopDockerSpawner, _name, _value)
elif SPAWNER == "fork":
    # Servers and kernels forked from preloaded processes (services/workshop/forkspawner.py).
    from workshop.forkspawner import ForkSpawner, fork_servers

    c.JupyterHub.spawner_class = ForkSpawner
    fork_servers()  # they import while the hub starts, not at the first login
elif SPAWNER != "local":
    raise ValueError(f"WORKSHOP_SPAWNER={SPAWNER!r}: use 'fork' (default), 'local' or "
                     "'containers'")

# -- groups and roles ---------------------------------------------------------------------
# The users-sync service keeps group membership in step with users.txt.
c.JupyterHub.load_groups = {"instructors": {}, "participants": {}}
c.JupyterHub.custom_scopes = {
    INSTRUCTOR_SCOPE: {"description": "See every participant's work on the dashboard."},
}
DASHBOARD_ACCESS = "access:services!service=dashboard"
STEP_IN = "access:servers!group=participants"
c.JupyterHub.load_roles = [
    # Everyone may reach the dashboard's door: servers post save events with their own
    # token (a token never has more than its owner). The dashboard itself shows pages only
    # to holders of the instructor scope.
    {"name": "user", "scopes": ["self", DASHBOARD_ACCESS]},
    {"name": "server",
     "scopes": ["users:activity!user", "access:servers!server", DASHBOARD_ACCESS]},
    # Instructors see the dashboard and may step into participants' servers (to help on
    # the spot) and start/stop them; never into another instructor's.
    {"name": "instructor", "groups": ["instructors"],
     "description": "Instructors: the dashboard, and participants' servers",
     "scopes": [INSTRUCTOR_SCOPE, DASHBOARD_ACCESS, STEP_IN,
                "admin:servers!group=participants"]},
    # The dashboard lists who runs a server and restarts a stuck participant's server.
    {"name": "dashboard", "services": ["dashboard"],
     "description": "See running servers; start and stop participants' servers",
     "scopes": ["list:users", "read:servers", "servers!group=participants",
                # Read saved notebooks through participants' own servers when homes are not
                # on its disk (DASHBOARD_SOURCE=contents): with a token of that participant,
                # limited to their own server (contents_source.py), so nothing a
                # participant's server receives opens anybody else's.
                "tokens!group=participants", "read:groups!group=participants"]},
    {"name": "users-sync", "services": ["users-sync"],
     "description": "Create, update and remove users and groups from users.txt",
     "scopes": ["admin:users", "admin:servers", "admin:groups", "groups", "list:users",
                "list:groups", "read:groups"]},
    {"name": "idle-culler", "services": ["idle-culler"],
     "description": "Stop servers nobody used for a long time",
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
]

# Stepping into a participant's server runs what the participant serves in the
# instructor's browser: only where that is an origin apart from the hub's and the
# dashboard's. Without subdomains, instructors see work on the board but never enter.
if not ADDRESSES.subdomains:
    for _role in c.JupyterHub.load_roles:
        if _role["name"] == "instructor":
            _role["scopes"].remove(STEP_IN)

# -- services -----------------------------------------------------------------------------
# How the dashboard reads saved notebooks (services/dashboard/settings.py): from the homes
# on disk, or through participants' servers (DASHBOARD_SOURCE=contents|files|auto), and
# where it looks for homes (DASHBOARD_HOME_ROOT: the e2e tests hide them this way).
DASHBOARD_SOURCE_ENV = {"DASHBOARD_PROXY_URL": ADDRESSES.proxy_url}
if "DASHBOARD_SOURCE" in os.environ:
    DASHBOARD_SOURCE_ENV["DASHBOARD_SOURCE"] = os.environ["DASHBOARD_SOURCE"]
if "DASHBOARD_HOME_ROOT" in os.environ:
    DASHBOARD_SOURCE_ENV["WORKSHOP_HOME_ROOT"] = os.environ["DASHBOARD_HOME_ROOT"]
c.JupyterHub.services = [
    {
        "name": "dashboard",
        "url": ADDRESSES.dashboard_url,
        # Started again at once if it ever dies (workshop/supervise.py): the hub itself
        # would notice only on its next poll, half a minute of lost save events later.
        "command": [sys.executable, "-m", "workshop.supervise", "--",
                    sys.executable, "-m", "dashboard"],
        "cwd": SERVICES,
        "display": True,
        # Our own service: no "authorize this application?" page at every login.
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [INSTRUCTOR_SCOPE],
        "environment": service_env(
            DASHBOARD_STATE_DIR=str(STATE / "dashboard"),
            DASHBOARD_OUTPUT_DIR="/srv/hub/tmp/dashboard",
            WORKSHOP_MATERIALS_DIR=MATERIALS,
            WORKSHOP_LEDGER_DIR=LEDGER,
            **DASHBOARD_SOURCE_ENV,
        ),
    },
    {
        "name": "users-sync",
        "command": [sys.executable, "-m", "workshop.usersync"],
        "cwd": SERVICES,
        "environment": service_env(),
    },
    {
        # Workshop default: a participant's server is stopped after 3 idle hours (lunch and
        # a long exercise survive; a forgotten browser tab overnight does not). Kernels'
        # activity counts as use. WORKSHOP_IDLE_TIMEOUT (seconds) changes it.
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={IDLE_TIMEOUT}", "--cull-every=300", "--concurrency=5"],
    },
]
