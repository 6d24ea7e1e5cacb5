"""The appliance's own configuration, read for generate_values.py (no second copy of it).

etc/jupyterhub/jupyterhub_config.py only runs inside the appliance's container (it imports
from /srv/services and keeps secrets in the state volume), so it is read from its source:
top-level constants, `from ... import` names and the plain-data parts of `c.JupyterHub...`
assignments (roles, custom scopes, the dashboard service's static keys, the idle culler's
flags). Anything that is not plain data (a call, an attribute) is skipped where optional
and reported where needed. docker-compose.yml gives the idle timeout.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
HUB_CONFIG = REPO / "etc/jupyterhub/jupyterhub_config.py"
COMPOSE = REPO / "docker-compose.yml"
# Services the Kubernetes deployment runs. The appliance's users-sync has no job there (the
# authenticator keeps groups in step) and z2jh runs the idle culler with its own role.
K8S_SERVICES = frozenset({"dashboard"})
APPLIANCE_ONLY_SERVICE_KEYS = frozenset({"name", "url", "command", "cwd", "environment",
                                         "api_token"})


class ConfigError(Exception):
    """The appliance's configuration is not what this reader expects: one readable line."""


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


class Unsupported(Exception):
    """An expression this reader does not evaluate (a call, an attribute, ...)."""


@dataclass
class HubSource:
    """Top-level names of jupyterhub_config.py and what `c....` gets, evaluated on demand."""

    path: Path = HUB_CONFIG
    assigned: dict[str, ast.expr] = field(default_factory=dict)
    imported: dict[str, str] = field(default_factory=dict)
    config: dict[str, ast.expr] = field(default_factory=dict)

    def name(self, name: str, seen: frozenset[str] = frozenset()) -> Any:
        if name in self.assigned and name not in seen:
            return self.evaluate(self.assigned[name], seen | {name})
        if name in self.imported:
            try:
                return getattr(importlib.import_module(self.imported[name]), name)
            except (ImportError, AttributeError) as e:
                raise Unsupported(name) from e
        raise Unsupported(name)

    def evaluate(self, node: ast.expr, seen: frozenset[str] = frozenset()) -> Any:
        """Literals, containers, names and f-strings; anything else is Unsupported."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            return [self.evaluate(item, seen) for item in node.elts]
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {self.evaluate(k, seen): self.evaluate(v, seen)  # type: ignore[arg-type]
                    for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.Name):
            return self.name(node.id, seen)
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self.evaluate(part, seen)) for part in node.values)
        if (isinstance(node, ast.FormattedValue) and node.format_spec is None
                and node.conversion == -1):
            return self.evaluate(node.value, seen)
        raise Unsupported(ast.unparse(node)[:60])

    def setting(self, dotted: str) -> Any:
        if dotted not in self.config:
            raise ConfigError(f"{_shown(self.path)} no longer sets {dotted}")
        try:
            return self.evaluate(self.config[dotted])
        except Unsupported as e:
            raise ConfigError(f"{_shown(self.path)}: {dotted} is not plain data "
                              f"any more ({e}): update deploy/kubernetes/appliance_config.py"
                              ) from e


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def read_hub_source(path: Path = HUB_CONFIG) -> HubSource:
    source = HubSource(path=path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module:
            for alias in statement.names:
                source.imported[alias.asname or alias.name] = statement.module
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = _dotted(statement.targets[0])
            if target and target.startswith("c."):
                source.config[target[2:]] = statement.value
            elif target and "." not in target:
                source.assigned[target] = statement.value
    return source


def _entry(node: ast.expr, key: str) -> ast.expr | None:
    """The value node of `key` in a dict literal, unevaluated."""
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values, strict=True):
            if isinstance(k, ast.Constant) and k.value == key:
                return v
    return None


def static_entries(source: HubSource, node: ast.expr) -> dict[str, Any]:
    """The keys of a dict literal whose values can be evaluated; the rest are skipped."""
    entries: dict[str, Any] = {}
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            try:
                entries[source.evaluate(key)] = source.evaluate(value)  # type: ignore[arg-type]
            except Unsupported:
                continue
    return entries


@dataclass(frozen=True)
class Appliance:
    roles: list[dict[str, Any]]
    custom_scopes: dict[str, Any]
    dashboard: dict[str, Any]  # the dashboard service's static settings
    culler_flags: dict[str, str]  # e.g. {"cull-every": "300"}


def read_appliance(path: Path = HUB_CONFIG) -> Appliance:
    source = read_hub_source(path)
    services = source.config.get("JupyterHub.services")
    if not isinstance(services, ast.List):
        raise ConfigError(f"{_shown(path)}: JupyterHub.services is not a list")
    by_name = {static_entries(source, node).get("name"): node for node in services.elts}
    if "dashboard" not in by_name:
        raise ConfigError(f"{_shown(path)}: no dashboard service")
    dashboard = {k: v for k, v in static_entries(source, by_name["dashboard"]).items()
                 if k not in APPLIANCE_ONLY_SERVICE_KEYS}
    # The culler's command line: its literal "--flag=value" items (the timeout is an
    # f-string of an environment variable; docker-compose.yml has its value).
    flags: dict[str, str] = {}
    culler = by_name.get("idle-culler")
    command = _entry(culler, "command") if culler is not None else None
    for item in command.elts if isinstance(command, ast.List) else []:
        if isinstance(item, ast.Constant) and str(item.value).startswith("--"):
            flag, _, value = str(item.value)[2:].partition("=")
            flags[flag] = value
    roles = source.setting("JupyterHub.load_roles")
    if not isinstance(roles, list) or not all(isinstance(r, dict) and isinstance(
            r.get("name"), str) for r in roles):
        raise ConfigError(f"{_shown(path)}: load_roles is not a list of named roles")
    scopes = source.setting("JupyterHub.custom_scopes")
    if not isinstance(scopes, dict):
        raise ConfigError(f"{_shown(path)}: custom_scopes is not a dict")
    return Appliance(roles=roles, custom_scopes=scopes, dashboard=dashboard,
                     culler_flags=flags)


def k8s_roles(roles: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """hub.loadRoles: the appliance's roles, without those of services not deployed here."""
    loaded: dict[str, dict[str, Any]] = {}
    for role in roles:
        spec = {k: v for k, v in role.items() if k != "name"}
        if "services" in spec:
            services = [s for s in spec["services"] if s in K8S_SERVICES]
            if not services and not spec.get("users") and not spec.get("groups"):
                continue
            spec["services"] = services
        loaded[role["name"]] = spec
    return loaded


def idle_timeout(path: Path = COMPOSE) -> int:
    """WORKSHOP_IDLE_TIMEOUT of the hub service in docker-compose.yml (seconds)."""
    try:
        compose = yaml.safe_load(path.read_text(encoding="utf-8"))
        env = compose["services"]["hub"].get("environment", {})
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"cannot read the hub service of {path}: {e}") from e
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    try:
        return int(env["WORKSHOP_IDLE_TIMEOUT"])
    except (KeyError, ValueError) as e:
        raise ConfigError(f"{path.name}: no usable WORKSHOP_IDLE_TIMEOUT ({e})") from e
