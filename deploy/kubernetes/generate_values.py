#!/usr/bin/env python3
"""Zero to JupyterHub (z2jh) values for the workshop appliance, from its own configuration.

    python deploy/kubernetes/generate_values.py --users etc/jupyterhub/users.txt \\
        --host lab.example.org --email you@example.org --image ghcr.io/you/workshop:TAG \\
        [--output values.yaml]

What it reads, so the cluster runs what one machine runs:
- users.txt, through the one parser (services/workshop/roster.py): only to report broken
  lines and count people. The file itself goes into a Kubernetes Secret (the command is
  printed on stderr); no name or password is written into the values.
- etc/jupyterhub/jupyterhub_config.py: roles, custom scopes, the dashboard service's
  static settings and the idle culler's flags, read from its source (it only runs inside
  the appliance's container).
- etc/jupyter/: the save hook (jupyter_server_config.py) and the JupyterLab settings,
  shipped into every participant's pod with singleuser.extraFiles.
- docker-compose.yml: the idle timeout (WORKSHOP_IDLE_TIMEOUT).

Only keys documented in z2jh's values.schema.yaml are written. Errors are one line on
stderr and exit status 2. See deploy/kubernetes/Readme.md.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "services"))  # the one users.txt parser, dashboard settings
sys.path.insert(0, str(HERE))

from appliance_config import (  # noqa: E402
    Appliance,
    ConfigError,
    idle_timeout,
    k8s_roles,
    read_appliance,
)

from dashboard.settings import Settings  # noqa: E402
from workshop.roster import Roster, parse_bytes  # noqa: E402

SERVER_CONFIG = REPO / "etc/jupyter/jupyter_server_config.py"
LAB_SETTINGS = REPO / "etc/jupyter/labsettings/workshop.json"
EXTRA_CONFIG = HERE / "z2jh_extra_config.py"

# Inside the pods (see the image recipes in Readme.md).
SERVICES_DIR = "/srv/services"  # our Python code, in the hub image
USERS_DIR = "/srv/workshop/users"  # the users.txt Secret, mounted as a directory
USERS_FILE = f"{USERS_DIR}/users.txt"
HUB_STATE = "/srv/jupyterhub"  # z2jh's hub volume (hub.db.type sqlite-pvc)
HUB_API = "http://127.0.0.1:8081/hub/api"  # the hub, from a service in its own pod
Z2JH_CHART = "4.4.0"  # the chart version these values were checked against (Readme.md)
AUTHENTICATOR = "workshop.authenticator.UsersFileAuthenticator"
# Where participants' images read these (ours: /etc/jupyter as on one machine, and the
# image links JupyterLab's overrides.d/workshop.json to the settings file there).
DEFAULT_SERVER_CONFIG_PATH = "/etc/jupyter/jupyter_server_config.py"
DEFAULT_LAB_SETTINGS_PATH = "/etc/jupyter/labsettings/workshop.json"

DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Memory as JupyterHub's ByteSpecification takes it (K/M/G/T, powers of 1024); volume
# sizes as Kubernetes quantities (2Gi, 500M, ...).
MEMORY = re.compile(r"^(\d+(\.\d+)?)([KMGT]?)$")
STORAGE = re.compile(r"^\d+(\.\d+)?([KMGTPE]i|[kMGTPE])?$")


class UsageError(Exception):
    """A problem with the arguments or the input files: one line, exit status 2."""


# -- arguments ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    name: str
    tag: str

    @classmethod
    def parse(cls, text: str, what: str) -> Image:
        name, _, tag = text.rpartition(":")
        if "@" in text or not name or not tag or "/" in tag or any(c.isspace() for c in text):
            raise UsageError(f"{what} must be NAME:TAG (e.g. ghcr.io/you/workshop:2026-05), "
                             f"got {text!r}")
        return cls(name, tag)


def memory(text: str, what: str) -> float:
    m = MEMORY.match(text)
    if not m:
        raise UsageError(f"{what} must be bytes with K, M, G or T, like 512M or 2G, "
                         f"got {text!r}")
    return float(m.group(1)) * 1024 ** " KMGT".index(m.group(3) or " ")


def cpus(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UsageError(f"{what} must be a positive number of CPUs, got {text!r}")
    return value


@dataclass(frozen=True)
class Options:
    users: Path
    image: Image
    hub_image: Image
    host: str | None = None
    email: str | None = None
    users_secret: str = "workshop-users"
    namespace: str = "workshop"
    memory_guarantee: str = "512M"
    memory_limit: str = "2G"
    cpu_guarantee: float = 0.1
    cpu_limit: float = 1.0
    home_size: str = "2Gi"
    server_config_path: str = DEFAULT_SERVER_CONFIG_PATH
    lab_settings_path: str = DEFAULT_LAB_SETTINGS_PATH
    cull_timeout: int | None = None
    output: Path | None = None


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors: one line too
        raise UsageError(message)


def options(argv: Sequence[str] | None = None) -> Options:
    p = Parser(prog="generate_values.py", description=__doc__.split("\n\n")[0],
               epilog="Then: see deploy/kubernetes/Readme.md for the helm commands.")
    p.add_argument("--users", required=True, type=Path, help="users.txt to ship")
    p.add_argument("--image", required=True,
                   help="participants' image, NAME:TAG (the appliance image for k8s)")
    p.add_argument("--hub-image", help="hub image with our services, NAME:TAG "
                   "(default: NAME-hub:TAG from --image)")
    p.add_argument("--host", help="public DNS name: HTTPS with Let's Encrypt (needs --email)")
    p.add_argument("--email", help="Let's Encrypt contact address")
    p.add_argument("--users-secret", default=Options.users_secret,
                   help="name of the Kubernetes Secret holding users.txt (%(default)s)")
    p.add_argument("--namespace", default=Options.namespace,
                   help="namespace used in the printed commands (%(default)s)")
    p.add_argument("--memory-guarantee", default=Options.memory_guarantee)
    p.add_argument("--memory-limit", default=Options.memory_limit)
    p.add_argument("--cpu-guarantee", default=str(Options.cpu_guarantee))
    p.add_argument("--cpu-limit", default=str(Options.cpu_limit))
    p.add_argument("--home-size", default=Options.home_size,
                   help="each participant's home volume (%(default)s; z2jh's default is 10Gi)")
    p.add_argument("--server-config-path", default=DEFAULT_SERVER_CONFIG_PATH,
                   help="where the participants' image reads jupyter_server_config.py "
                   "(%(default)s; docker-stacks: /opt/conda/etc/jupyter/...)")
    p.add_argument("--lab-settings-path", default=DEFAULT_LAB_SETTINGS_PATH,
                   help="where JupyterLab reads the workshop settings in the participants' "
                   "image (%(default)s; JupyterLab in /usr/local: /usr/local/share/jupyter/"
                   "lab/settings/overrides.json)")
    p.add_argument("--cull-timeout", type=int, help="idle seconds before a server is "
                   "stopped (default: WORKSHOP_IDLE_TIMEOUT in docker-compose.yml)")
    p.add_argument("--output", type=Path, help="write the values here instead of stdout")
    a = p.parse_args(argv)

    image = Image.parse(a.image, "--image")
    hub_image = (Image.parse(a.hub_image, "--hub-image") if a.hub_image
                 else Image(f"{image.name}-hub", image.tag))
    if bool(a.host) != bool(a.email):
        raise UsageError("--host and --email go together (Let's Encrypt needs both)")
    if a.host and not DNS_NAME.match(a.host.lower()):
        raise UsageError(f"--host must be a DNS name like lab.example.org, got {a.host!r}")
    if a.email and not EMAIL.match(a.email):
        raise UsageError(f"--email does not look like an address: {a.email!r}")
    for flag, value in (("--users-secret", a.users_secret), ("--namespace", a.namespace)):
        if not K8S_NAME.match(value):
            raise UsageError(f"{flag} must be a Kubernetes name (a-z, 0-9, '-'), got {value!r}")
    if memory(a.memory_guarantee, "--memory-guarantee") > memory(a.memory_limit,
                                                                 "--memory-limit"):
        raise UsageError("--memory-guarantee is larger than --memory-limit")
    if not STORAGE.match(a.home_size):
        raise UsageError(f"--home-size must be a Kubernetes quantity like 2Gi, got "
                         f"{a.home_size!r}")
    cpu_guarantee, cpu_limit = cpus(a.cpu_guarantee, "--cpu-guarantee"), cpus(a.cpu_limit,
                                                                           "--cpu-limit")
    if cpu_guarantee > cpu_limit:
        raise UsageError("--cpu-guarantee is larger than --cpu-limit")
    if not a.lab_settings_path.startswith("/") or not a.lab_settings_path.endswith(".json"):
        raise UsageError("--lab-settings-path must be an absolute path to a .json file")
    if not a.server_config_path.startswith("/") or not a.server_config_path.endswith(
            "/jupyter_server_config.py"):
        raise UsageError("--server-config-path must be an absolute path ending in "
                         "/jupyter_server_config.py")
    if a.cull_timeout is not None and a.cull_timeout <= 0:
        raise UsageError("--cull-timeout must be a positive number of seconds")
    return Options(users=a.users, image=image, hub_image=hub_image, host=a.host, email=a.email,
                   users_secret=a.users_secret, namespace=a.namespace,
                   memory_guarantee=a.memory_guarantee, memory_limit=a.memory_limit,
                   cpu_guarantee=cpu_guarantee, cpu_limit=cpu_limit, home_size=a.home_size,
                   server_config_path=a.server_config_path,
                   lab_settings_path=a.lab_settings_path, cull_timeout=a.cull_timeout,
                   output=a.output)


# -- the values -----------------------------------------------------------------------------
def build_values(opts: Options, appliance: Appliance) -> dict[str, Any]:
    settings = Settings()
    port = settings.port
    dashboard_state = f"{HUB_STATE}/dashboard"
    dashboard = {
        # The proxy's route and JupyterHub's idea of where the service is; the extra config
        # replaces the host with the hub pod's own address (see z2jh_extra_config.py).
        "url": f"http://hub:{port}",
        "command": ["python3", "-m", "dashboard"],
        "cwd": SERVICES_DIR,
        **appliance.dashboard,
        "environment": {
            "PYTHONPATH": SERVICES_DIR,
            "JUPYTERHUB_API_URL": HUB_API,
            "WORKSHOP_USERS_FILE": USERS_FILE,
            "DASHBOARD_STATE_DIR": f"{dashboard_state}/state",
            "DASHBOARD_OUTPUT_DIR": f"{dashboard_state}/output",
            # Homes are the participants' own volumes: read notebooks through their
            # servers, behind the proxy (its plain-HTTP port inside the cluster).
            "DASHBOARD_SOURCE": "contents",
            "DASHBOARD_PROXY_URL": "http://proxy-http:8000" if opts.host else "http://proxy-public",
        },
    }
    # Participants' servers (save events) and the proxy (browsers) may reach the dashboard
    # in the hub pod: z2jh's "Hub-managed services" page asks for exactly these rules.
    to_dashboard = {"to": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/component": "hub", "app.kubernetes.io/name": "jupyterhub"}}}],
        "ports": [{"port": port}]}
    # ... and the dashboard may reach the proxy's HTTP port (notebooks via the contents API).
    to_proxy = {"to": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/component": "proxy", "app.kubernetes.io/name": "jupyterhub"}}}],
        "ports": [{"port": 8000}]}
    flags = appliance.culler_flags
    cull: dict[str, Any] = {"enabled": True,
                            "timeout": opts.cull_timeout or idle_timeout()}
    if flags.get("cull-every", "").isdigit():
        cull["every"] = int(flags["cull-every"])
    if flags.get("concurrency", "").isdigit():
        cull["concurrency"] = int(flags["concurrency"])
    values: dict[str, Any] = {
        "hub": {
            "image": {"name": opts.hub_image.name, "tag": opts.hub_image.tag},
            "config": {
                # Never z2jh's default "dummy", even if the extra config did not run; the
                # extra config puts in the subclass that also manages groups.
                "JupyterHub": {"authenticator_class": AUTHENTICATOR,
                               "custom_scopes": appliance.custom_scopes},
                "Authenticator": {"manage_groups": True, "auth_refresh_age": 60,
                                  "refresh_pre_spawn": True},
                "UsersFileAuthenticator": {"users_file": USERS_FILE},
            },
            "extraEnv": {"POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}},
            "extraVolumes": [{"name": "workshop-users",
                              "secret": {"secretName": opts.users_secret,
                                         "defaultMode": 0o440}}],
            "extraVolumeMounts": [{"name": "workshop-users", "mountPath": USERS_DIR,
                                   "readOnly": True}],
            "services": {"dashboard": dashboard},
            "loadRoles": k8s_roles(appliance.roles),
            "extraConfig": {"workshop": EXTRA_CONFIG.read_text(encoding="utf-8")},
            # Participants' servers post save events straight to the dashboard.
            "service": {"extraPorts": [{"name": "dashboard", "port": port,
                                        "targetPort": port}]},
            "networkPolicy": {
                "ingress": [{"ports": [{"port": port}],
                             "from": [{"podSelector": {"matchLabels": {
                                 "hub.jupyter.org/network-access-hub": "true"}}}]}],
                "egress": [to_proxy],
            },
        },
        "singleuser": {
            "image": {"name": opts.image.name, "tag": opts.image.tag},
            "defaultUrl": "/lab",
            "cpu": {"guarantee": opts.cpu_guarantee, "limit": opts.cpu_limit},
            "memory": {"guarantee": opts.memory_guarantee, "limit": opts.memory_limit},
            "storage": {"capacity": opts.home_size},
            "extraEnv": {"WORKSHOP_EVENTS_URL": f"http://hub:{port}{settings.prefix}events"},
            "extraFiles": {
                "jupyter-server-config": {
                    "mountPath": opts.server_config_path,
                    "stringData": SERVER_CONFIG.read_text(encoding="utf-8")},
                "lab-settings": {"mountPath": opts.lab_settings_path,
                                 "stringData": LAB_SETTINGS.read_text(encoding="utf-8")},
            },
            "networkPolicy": {"egress": [to_dashboard]},
        },
        "proxy": {"chp": {"networkPolicy": {"egress": [to_dashboard]}}},
        "cull": cull,
    }
    if opts.host:
        values["proxy"]["https"] = {"enabled": True, "type": "letsencrypt",
                                    "hosts": [opts.host],
                                    "letsencrypt": {"contactEmail": opts.email}}
    return values


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (files, code) as readable `|` blocks; no &anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def render(values: dict[str, Any], opts: Options) -> str:
    try:
        source = opts.users.resolve().relative_to(REPO)
    except ValueError:
        source = Path(opts.users.name)
    header = (
        "# Zero to JupyterHub values for the workshop appliance: see deploy/kubernetes/"
        "Readme.md.\n"
        f"# Generated by deploy/kubernetes/generate_values.py for {source}, from the\n"
        "# appliance's configuration. Do not edit: change that and generate again.\n"
        "# No names or passwords in here: users.txt itself goes into the Kubernetes Secret\n"
        f"# {opts.users_secret!r}, mounted into the hub at {USERS_DIR}.\n"
    )
    body = yaml.dump(values, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return header + body


# -- the command ----------------------------------------------------------------------------
def read_roster(path: Path) -> Roster:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    roster = parse_bytes(data)  # per line, like the hub: one bad line never hides the rest
    for problem in roster.problems:
        print(f"{path}: {problem} (skipped)", file=sys.stderr)
    if not roster.accounts:
        raise UsageError(f"{path} lists nobody who could log in")
    return roster


def next_steps(opts: Options, roster: Roster) -> str:
    plain = sum(not a.hashed for a in roster.accounts.values())
    values = opts.output or "values.yaml"
    lines = [f"{len(roster.participants)} participants, {len(roster.instructors)} "
             "instructors in users.txt."]
    if not roster.instructors:
        lines.append("warning: no [instructors] in users.txt: nobody can open the dashboard.")
    if plain:
        lines.append(f"note: {plain} plain-text passwords; a Secret is only base64-encoded, "
                     "so prefer bcrypt hashes in users.txt.")
    ns = opts.namespace
    lines += [
        "Next (the Secret first; again after every change of users.txt):",
        f"  kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -",
        f"  kubectl -n {ns} create secret generic {opts.users_secret} "
        f"--from-file=users.txt={shlex.quote(str(opts.users))} --dry-run=client -o yaml"
        " | kubectl apply -f -",
        f"  helm upgrade --install workshop jupyterhub/jupyterhub --namespace {ns} "
        f"--version {Z2JH_CHART} --values {shlex.quote(str(values))}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        opts = options(argv)
        roster = read_roster(opts.users)
        text = render(build_values(opts, read_appliance()), opts)
        if opts.output:
            try:
                opts.output.write_text(text, encoding="utf-8")
            except OSError as e:
                raise UsageError(f"cannot write {opts.output}: {e}") from e
        else:
            sys.stdout.write(text)
    except (UsageError, ConfigError) as e:
        print(f"generate_values.py: error: {e}", file=sys.stderr)
        return 2
    print(next_steps(opts, roster), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
