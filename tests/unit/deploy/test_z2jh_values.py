"""deploy/kubernetes/generate_values.py: z2jh values from the appliance's own configuration.

No cluster and no network: the values are rendered from a small users.txt and checked
against the z2jh keys they may use (written down below, each with the path in z2jh's
jupyterhub/values.schema.yaml that documents it), against JupyterHub's own classes for
the pass-through parts, and against the appliance's files they must carry.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bcrypt
import pytest
import yaml
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.services.service import Service
from traitlets.config import Config

from dashboard.settings import INSTRUCTOR_SCOPE
from workshop.authenticator import UsersFileAuthenticator

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / "deploy/kubernetes/generate_values.py"
_spec = importlib.util.spec_from_file_location("generate_values", GENERATOR)
assert _spec and _spec.loader
gv = importlib.util.module_from_spec(_spec)
sys.modules["generate_values"] = gv  # dataclasses look their module up there
_spec.loader.exec_module(gv)

HASH = bcrypt.hashpw(b"hashed-secret-7", bcrypt.gensalt(rounds=4)).decode()
USERS_LINES = [
    "# a small class",                 # 1
    "alice:alice-secret-1",            # 2
    f"bob:{HASH}",                     # 3
    "carol has no colon",              # 4  malformed
    "Dave:upper:case:pass",            # 5  -> dave, password "upper:case:pass"
    "root:reserved-secret-3",          # 6  reserved name
    "",                                # 7
    "[instructors]",                   # 8
    "teacher:teach-secret-9",          # 9
    "[bogus]",                         # 10 unknown section
    "alice:duplicate-secret-4",        # 11 duplicate
]
SECRETS = ["alice-secret-1", HASH, "hashed-secret-7", "upper:case:pass", "reserved-secret-3",
           "teach-secret-9", "duplicate-secret-4"]
BAD_LINES = [4, 6, 10, 11]
BASE_ARGS = ["--host", "lab.example.org", "--email", "you@example.org",
             "--image", "ghcr.io/you/workshop:2026-05"]

# Every key path the generator may write, each with the place in z2jh's
# jupyterhub/values.schema.yaml that documents it ("*" is one key of our choosing). A path
# that ends on a mapping covers that whole mapping: pass-through traitlets config and
# Kubernetes-native objects, which are checked separately below where they can be.
Z2JH_KEYS: dict[str, str] = {
    "hub.image.name": "hub.image.name",
    "hub.image.tag": "hub.image.tag",
    # traitlets pass-through: patternProperties "^[A-Z].*$" (classes checked below)
    "hub.config.*.*": "hub.config.patternProperties[^[A-Z].*$]",
    "hub.extraEnv.*": "hub.extraEnv (object form: name -> value or EnvVar)",
    "hub.extraVolumes": "hub.extraVolumes (k8s Volume list)",
    "hub.extraVolumeMounts": "hub.extraVolumeMounts (k8s VolumeMount list)",
    # name/admin/command/url/api_token documented, additionalProperties: JupyterHub's
    # own service fields (checked against jupyterhub.services.service.Service below)
    "hub.services.*.*": "hub.services.additionalProperties",
    # role fields: checked below (name, description, scopes, users, groups, services)
    "hub.loadRoles.*.*": "hub.loadRoles.additionalProperties",
    "hub.extraConfig.*": "hub.extraConfig.additionalProperties (Python source)",
    "hub.service.extraPorts": "hub.service.extraPorts (k8s ServicePort list)",
    "hub.networkPolicy.ingress": "hub.networkPolicy.ingress (k8s NetworkPolicyIngressRule list)",
    "hub.networkPolicy.egress": "hub.networkPolicy.egress (k8s NetworkPolicyEgressRule list)",
    "singleuser.image.name": "singleuser.image.name",
    "singleuser.image.tag": "singleuser.image.tag",
    "singleuser.defaultUrl": "singleuser.defaultUrl",
    "singleuser.cpu.guarantee": "singleuser.cpu.guarantee",
    "singleuser.cpu.limit": "singleuser.cpu.limit",
    "singleuser.memory.guarantee": "singleuser.memory.guarantee",
    "singleuser.memory.limit": "singleuser.memory.limit",
    "singleuser.storage.capacity": "singleuser.storage.capacity",
    "singleuser.extraEnv.*": "singleuser.extraEnv",
    "singleuser.extraFiles.*.mountPath": "singleuser.extraFiles.patternProperties[.*].mountPath",
    "singleuser.extraFiles.*.stringData":
        "singleuser.extraFiles.patternProperties[.*].stringData",
    "singleuser.networkPolicy.egress":
        "singleuser.networkPolicy.egress (k8s NetworkPolicyEgressRule list)",
    "cull.enabled": "cull.enabled",
    "cull.timeout": "cull.timeout",
    "cull.every": "cull.every",
    "cull.concurrency": "cull.concurrency",
    "proxy.chp.networkPolicy.egress":
        "proxy.chp.networkPolicy.egress (k8s NetworkPolicyEgressRule list)",
    "proxy.https.enabled": "proxy.https.enabled",
    "proxy.https.type": "proxy.https.type",
    "proxy.https.hosts": "proxy.https.hosts",
    "proxy.https.letsencrypt.contactEmail": "proxy.https.letsencrypt.contactEmail",
}
ROLE_FIELDS = {"name", "description", "scopes", "users", "groups", "services"}


def _matches(pattern: str, path: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(path) and all(p in ("*", k) for p, k in zip(parts, path,
                                                                          strict=True))


def unknown_paths(node: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Key paths in `node` that no entry of Z2JH_KEYS covers."""
    if path and any(_matches(pattern, path) for pattern in Z2JH_KEYS):
        return []
    if isinstance(node, dict) and node:
        return [p for key, value in node.items() for p in unknown_paths(value, (*path, key))]
    return [".".join(path)]


def covered_patterns(node: Any, path: tuple[str, ...] = ()) -> set[str]:
    found = {pattern for pattern in Z2JH_KEYS if path and _matches(pattern, path)}
    if not found and isinstance(node, dict):
        for key, value in node.items():
            found |= covered_patterns(value, (*path, key))
    return found


@pytest.fixture
def users_txt(tmp_path: Path) -> Path:
    path = tmp_path / "users.txt"
    path.write_text("\n".join(USERS_LINES) + "\n", encoding="utf-8")
    return path


def generate(users: Path, capsys: pytest.CaptureFixture[str], *extra: str
             ) -> tuple[int, str, str]:
    code = gv.main(["--users", str(users), *BASE_ARGS, *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def rendered(users_txt: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str, str]:
    code, out, err = generate(users_txt, capsys)
    assert code == 0, err
    return yaml.safe_load(out), out, err


# -- structure --------------------------------------------------------------------------------
def test_every_key_is_one_z2jh_documents(rendered):
    values, _, _ = rendered
    assert unknown_paths(values) == []
    # ... and the list above holds nothing the generator no longer writes.
    assert covered_patterns(values) == set(Z2JH_KEYS)


def test_the_key_check_catches_typos():
    assert unknown_paths({"singleuser": {"defaultURL": "/lab"}}) == ["singleuser.defaultURL"]
    assert unknown_paths({"hub": {"servics": {"dashboard": {}}}}) == ["hub.servics.dashboard"]
    assert unknown_paths({"cull": {"timeout": 1, "evry": 2}}) == ["cull.evry"]


def test_hub_config_sections_are_real_traits(rendered):
    values, _, _ = rendered
    classes = {"JupyterHub": JupyterHub, "Authenticator": Authenticator,
               "UsersFileAuthenticator": UsersFileAuthenticator}
    for section, traits in values["hub"]["config"].items():
        configurable = set(classes[section].class_trait_names(config=True))
        assert set(traits) <= configurable, section


def test_services_and_roles_use_fields_jupyterhub_knows(rendered):
    values, _, _ = rendered
    for service in values["hub"]["services"].values():
        assert set(service) <= set(Service.class_trait_names())
    for role in values["hub"]["loadRoles"].values():
        assert set(role) <= ROLE_FIELDS
        assert set(role.get("services", [])) <= set(values["hub"]["services"])


def test_types_z2jh_expects(rendered):
    values, _, _ = rendered
    single = values["singleuser"]
    assert isinstance(single["cpu"]["guarantee"], float)
    assert isinstance(single["cpu"]["limit"], float)
    assert single["memory"] == {"guarantee": "512M", "limit": "2G"}
    assert single["storage"] == {"capacity": "2Gi"}
    assert all(isinstance(values["cull"][k], int) for k in ("timeout", "every", "concurrency"))
    assert values["cull"]["enabled"] is True
    for key in ("extraVolumes", "extraVolumeMounts"):
        assert isinstance(values["hub"][key], list)
    assert values["proxy"]["https"] == {
        "enabled": True, "type": "letsencrypt", "hosts": ["lab.example.org"],
        "letsencrypt": {"contactEmail": "you@example.org"}}


# -- what it must carry -------------------------------------------------------------------------
def test_no_password_from_users_txt_anywhere(users_txt, rendered, tmp_path, capsys):
    _, out, err = rendered
    output = tmp_path / "values.yaml"
    code, out2, err2 = generate(users_txt, capsys, "--output", str(output))
    assert code == 0
    for text in (out, err, out2, err2, output.read_text()):
        for secret in SECRETS:
            assert secret not in text


def test_users_txt_reaches_the_hub_as_a_secret(rendered):
    values, _, err = rendered
    hub = values["hub"]
    volume = hub["extraVolumes"][0]
    assert volume["secret"]["secretName"] == "workshop-users"
    assert volume["secret"]["defaultMode"] == 0o440
    mount = hub["extraVolumeMounts"][0]
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    assert "subPath" not in mount  # a directory mount: Secret updates reach the pod
    users_file = f"{mount['mountPath']}/users.txt"
    assert hub["config"]["UsersFileAuthenticator"]["users_file"] == users_file
    assert hub["services"]["dashboard"]["environment"]["WORKSHOP_USERS_FILE"] == users_file
    assert "kubectl -n workshop create secret generic workshop-users --from-file=users.txt=" in err


def test_instructors_role_and_groups_from_users_txt(rendered, users_txt, monkeypatch):
    values, _, _ = rendered
    roles = values["hub"]["loadRoles"]
    assert roles["instructor"]["groups"] == ["instructors"]
    assert INSTRUCTOR_SCOPE in roles["instructor"]["scopes"]
    assert "access:services!service=dashboard" in roles["instructor"]["scopes"]
    assert "access:services!service=dashboard" in roles["user"]["scopes"]
    assert roles["dashboard"]["services"] == ["dashboard"]
    assert "users-sync" not in roles and "idle-culler" not in roles  # appliance-only
    assert INSTRUCTOR_SCOPE in values["hub"]["config"]["JupyterHub"]["custom_scopes"]
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == (
        "workshop.authenticator.UsersFileAuthenticator")
    assert values["hub"]["config"]["Authenticator"]["manage_groups"] is True

    # The hub's extra config: users.txt decides each user's group, at login and refresh.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    c = Config()
    c.JupyterHub.services = [{"name": "dashboard", "url": "http://hub:10101"}]
    exec(compile(values["hub"]["extraConfig"]["workshop"], "workshop", "exec"), {"c": c})
    assert c.JupyterHub.services[0]["url"] == "http://10.1.2.3:10101"
    auth = c.JupyterHub.authenticator_class(users_file=str(users_txt))
    login = lambda name, pw: asyncio.run(  # noqa: E731
        auth.authenticate(None, {"username": name, "password": pw}))
    refresh = lambda name: asyncio.run(auth.refresh_user(SimpleNamespace(name=name)))  # noqa: E731
    assert login("teacher", "teach-secret-9") == {"name": "teacher", "groups": ["instructors"]}
    assert login("alice", "alice-secret-1") == {"name": "alice", "groups": ["participants"]}
    assert login("bob", "hashed-secret-7") == {"name": "bob", "groups": ["participants"]}
    assert login("alice", "wrong") is None
    assert refresh("teacher") == {"name": "teacher", "groups": ["instructors"]}

    users_txt.write_text("teacher:teach-secret-9\n[instructors]\nbob:x\n", encoding="utf-8")
    assert refresh("teacher") == {"name": "teacher", "groups": ["participants"]}
    assert refresh("bob") == {"name": "bob", "groups": ["instructors"]}
    assert refresh("alice") is False  # removed from users.txt: must log in again
    users_txt.unlink()
    # Unreadable for a moment (a Secret being replaced): the last good list stays in force.
    assert refresh("teacher") == {"name": "teacher", "groups": ["participants"]}


def test_dashboard_is_a_hub_service(rendered):
    values, _, _ = rendered
    dashboard = values["hub"]["services"]["dashboard"]
    assert dashboard["command"] == ["python3", "-m", "dashboard"]
    assert dashboard["url"] == "http://hub:10101"
    assert dashboard["oauth_no_confirm"] is True
    assert dashboard["oauth_client_allowed_scopes"] == [INSTRUCTOR_SCOPE]
    env = dashboard["environment"]
    assert env["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"
    # Notebooks through participants' servers, behind the proxy's in-cluster HTTP port.
    assert env["DASHBOARD_SOURCE"] == "contents"
    assert env["DASHBOARD_PROXY_URL"] == "http://proxy-http:8000"  # with autohttps
    assert values["hub"]["networkPolicy"]["egress"] == [{"to": [{"podSelector": {
        "matchLabels": {"app.kubernetes.io/component": "proxy",
                        "app.kubernetes.io/name": "jupyterhub"}}}], "ports": [{"port": 8000}]}]
    role = values["hub"]["loadRoles"]["dashboard"]
    # contents mode with a token per participant, never one that opens every server
    assert "tokens!group=participants" in role["scopes"]
    assert "access:servers!group=participants" not in role["scopes"]
    assert values["hub"]["service"]["extraPorts"] == [
        {"name": "dashboard", "port": 10101, "targetPort": 10101}]
    assert values["hub"]["networkPolicy"]["ingress"][0]["ports"] == [{"port": 10101}]
    to_hub = {"to": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/component": "hub", "app.kubernetes.io/name": "jupyterhub"}}}],
        "ports": [{"port": 10101}]}
    assert values["singleuser"]["networkPolicy"]["egress"] == [to_hub]
    assert values["proxy"]["chp"]["networkPolicy"]["egress"] == [to_hub]
    assert values["hub"]["extraEnv"]["POD_IP"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "status.podIP"}


def test_save_hook_and_lab_settings_ship_as_files(rendered, users_txt, capsys):
    values, _, _ = rendered
    single = values["singleuser"]
    files = single["extraFiles"]
    assert files["jupyter-server-config"] == {
        "mountPath": "/etc/jupyter/jupyter_server_config.py",
        "stringData": (REPO / "etc/jupyter/jupyter_server_config.py").read_text()}
    assert files["lab-settings"]["stringData"] == (
        REPO / "etc/jupyter/labsettings/workshop.json").read_text()
    assert files["lab-settings"]["mountPath"] == "/etc/jupyter/labsettings/workshop.json"
    assert single["extraEnv"] == {
        "WORKSHOP_EVENTS_URL": "http://hub:10101/services/dashboard/events"}
    assert single["defaultUrl"] == "/lab"
    assert single["image"] == {"name": "ghcr.io/you/workshop", "tag": "2026-05"}
    assert values["hub"]["image"] == {"name": "ghcr.io/you/workshop-hub", "tag": "2026-05"}

    lab = "/usr/local/share/jupyter/lab/settings/overrides.json"
    server = "/opt/conda/etc/jupyter/jupyter_server_config.py"
    code, out, _ = generate(users_txt, capsys, "--lab-settings-path", lab,
                            "--server-config-path", server,
                            "--hub-image", "registry.local:5000/hub:v1")
    assert code == 0
    values = yaml.safe_load(out)
    assert values["singleuser"]["extraFiles"]["lab-settings"]["mountPath"] == lab
    assert values["singleuser"]["extraFiles"]["jupyter-server-config"]["mountPath"] == server
    assert values["hub"]["image"] == {"name": "registry.local:5000/hub", "tag": "v1"}


def test_cull_timeout_is_the_appliance_default(rendered, users_txt, capsys):
    values, _, _ = rendered
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert values["cull"]["timeout"] == int(
        compose["services"]["hub"]["environment"]["WORKSHOP_IDLE_TIMEOUT"]) == 10800
    assert values["cull"]["every"] == 300
    code, out, _ = generate(users_txt, capsys, "--cull-timeout", "600")
    assert code == 0 and yaml.safe_load(out)["cull"]["timeout"] == 600


def test_without_host_no_https(users_txt, capsys):
    code = gv.main(["--users", str(users_txt), "--image", "ghcr.io/you/workshop:1"])
    out, _ = capsys.readouterr()
    values = yaml.safe_load(out)
    assert code == 0 and "https" not in values["proxy"]
    proxy_url = values["hub"]["services"]["dashboard"]["environment"]["DASHBOARD_PROXY_URL"]
    assert proxy_url == "http://proxy-public"  # no autohttps: the proxy itself


# -- users.txt problems and errors --------------------------------------------------------------
def test_malformed_lines_reported_with_numbers_and_skipped(rendered):
    _, _, err = rendered
    reported = [line for line in err.splitlines() if "(skipped)" in line]
    assert [int(line.split("line ")[1].split(":")[0]) for line in reported] == BAD_LINES
    assert "3 participants, 1 instructors" in err  # alice, bob, dave; teacher


@pytest.mark.parametrize("args, message", [
    (["--image", "ghcr.io/you/workshop"], "--image must be NAME:TAG"),
    (["--image", "ghcr.io/you/workshop@sha256:abc"], "--image must be NAME:TAG"),
    (["--image", "w:1", "--host", "lab.example.org"], "--host and --email go together"),
    (["--image", "w:1", "--host", "not a host", "--email", "a@b.org"], "--host must be"),
    (["--image", "w:1", "--host", "lab.example.org", "--email", "nobody"], "--email"),
    (["--image", "w:1", "--memory-limit", "lots"], "--memory-limit must be"),
    (["--image", "w:1", "--memory-limit", "2Gi"], "--memory-limit must be"),
    (["--image", "w:1", "--memory-guarantee", "4G"], "larger than --memory-limit"),
    (["--image", "w:1", "--memory-guarantee", "3000M"], "larger than --memory-limit"),
    (["--image", "w:1", "--cpu-limit", "-1"], "--cpu-limit must be"),
    (["--image", "w:1", "--cpu-guarantee", "2"], "larger than --cpu-limit"),
    (["--image", "w:1", "--home-size", "big"], "--home-size must be"),
    (["--image", "w:1", "--users-secret", "Bad_Name"], "--users-secret must be"),
    (["--image", "w:1", "--lab-settings-path", "settings.json"], "--lab-settings-path"),
    (["--image", "w:1", "--cull-timeout", "0"], "--cull-timeout"),
    (["--image", "w:1", "--server-config-path", "/etc/jupyter/x.py"], "--server-config-path"),
    (["--image", "w:1", "--no-such-flag"], "unrecognized arguments"),
    ([], "required: --image"),
])
def test_bad_arguments_exit_2_with_one_line(users_txt, capsys, args, message):
    code = gv.main(["--users", str(users_txt), *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("generate_values.py: error: ") and message in err


def test_unreadable_or_empty_users_txt(tmp_path, capsys):
    code = gv.main(["--users", str(tmp_path / "missing.txt"), "--image", "w:1"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "cannot read" in err
    empty = tmp_path / "users.txt"
    empty.write_text("# nobody yet\nbroken line\n")
    code = gv.main(["--users", str(empty), "--image", "w:1"])
    _, err = capsys.readouterr()
    assert code == 2 and "lists nobody" in err.splitlines()[-1]
    assert "line 2:" in err


def test_command_line(users_txt, tmp_path):
    """The real CLI: YAML on stdout, the next steps on stderr, exit 2 on a bad argument."""
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, str(GENERATOR), "--users", str(users_txt), *a],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    ok = run(*BASE_ARGS)
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(ok.stdout)["singleuser"]["defaultUrl"] == "/lab"
    assert "helm upgrade --install" in ok.stderr
    bad = run("--image", "nope")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1


def test_committed_example_has_the_shape_of_a_fresh_render(capsys):
    example = REPO / "deploy/kubernetes/values.example.yaml"
    code, out, _ = generate(REPO / "etc/jupyterhub/users.txt.sample", capsys)
    assert code == 0
    committed, fresh = yaml.safe_load(example.read_text()), yaml.safe_load(out)
    assert covered_patterns(committed) == covered_patterns(fresh) == set(Z2JH_KEYS)
    assert unknown_paths(committed) == []
    sample_passwords = ["change-me-alice", "change-me-bob", "change-me-teacher"]
    assert not any(p in example.read_text() for p in sample_passwords)

