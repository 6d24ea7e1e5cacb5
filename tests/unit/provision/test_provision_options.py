"""Argument validation and defaults of create-node.py (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.credentials import dns_credentials, token_from_env
from provision.errors import REDACT, ProvisionError
from provision.options import (
    DEFAULT_API_URL,
    SshTarget,
    parse_options,
    parse_target,
    setup_command,
)


def parse(*argv: str, env: dict[str, str] | None = None, state: Path | None = None):
    extra = ["--state-dir", str(state)] if state else ["--state-dir", "/nonexistent-state"]
    return parse_options([*argv, *extra], env or {})


def test_droplet_defaults():
    opts = parse("--hostname", "Lab", "--domain", "example.org")
    assert (opts.mode, opts.hostname, opts.fqdn, opts.name) == \
        ("create", "lab", "lab.example.org", "lab")
    assert opts.size == "s-4vcpu-8gb" and opts.image == "ubuntu-24-04-x64"
    assert opts.remote_dir == "/opt/workshop" and opts.tls and opts.api_url == DEFAULT_API_URL


def test_hostname_may_be_given_fully_qualified():
    opts = parse("--hostname", "lab.example.org.", "--domain", "example.org")
    assert (opts.hostname, opts.fqdn) == ("lab", "lab.example.org")
    nested = parse("--hostname", "eu.lab", "--domain", "example.org")
    assert (nested.hostname, nested.fqdn, nested.name) == ("eu.lab", "eu.lab.example.org",
                                                          "eu.lab")


def test_domain_precedence_flag_env_config(tmp_path: Path):
    (tmp_path / "config.toml").write_text('domain = "from-config.org"\nsize = "large"\n')
    env = {"DIGITALOCEAN_DOMAIN": "from-env.org"}
    assert parse("--hostname", "a", "--domain", "flag.org", env=env, state=tmp_path).domain \
        == "flag.org"
    assert parse("--hostname", "a", env=env, state=tmp_path).domain == "from-env.org"
    configured = parse("--hostname", "a", state=tmp_path)
    assert configured.domain == "from-config.org" and configured.size == "s-8vcpu-16gb"


def test_api_url_from_environment():
    env = {"DIGITALOCEAN_API_URL": "https://127.0.0.1:8443/"}
    assert parse("--hostname", "a", "--domain", "x.org", env=env).api_url == \
        "https://127.0.0.1:8443"


@pytest.mark.parametrize(("argv", "needle"), [
    (["--hostname", "a"], "no domain"),
    (["--domain", "x.org"], "--hostname"),
    (["--hostname", "a_b", "--domain", "x.org"], "not a valid DNS name"),
    (["--hostname", "x.org", "--domain", "x.org"], "the domain itself"),
    (["--hostname", "a", "--domain", "localhost"], "not a valid DNS domain"),
    (["--hostname", "a", "--domain", "x.org", "--size", "giant"], "unknown size"),
    (["--hostname", "a", "--ssh", "root@h", "--destroy"], "--destroy"),
    (["--hostname", "a", "--ssh", "root@h", "--size", "small"], "--size is for droplets"),
    (["--hostname", "a", "--domain", "x.org", "--known-hosts", "k"], "--known-hosts is for"),
    (["--hostname", "a", "--domain", "x.org", "--no-tls", "--staging"], "--no-tls"),
    (["--hostname", "a", "--domain", "x.org", "--acme-server", "ftp://x"], "--acme-server"),
    (["--hostname", "a", "--domain", "x.org", "--setup-only", "a b"], "--setup-only"),
    (["--hostname", "a", "--domain", "x.org", "--remote-dir", "opt"], "--remote-dir"),
    (["--hostname", "a", "--domain", "x.org", "--remote-dir", "/"], "--remote-dir"),
    (["--hostname", "a", "--domain", "x.org", "--api-url", "http://x"], "https://"),
    (["--hostname", "a", "--domain", "x.org", "--ssh-timeout", "0"], "--ssh-timeout"),
    (["--hostname", "a", "--domain", "x.org", "--ssh-timeout", "nan"], "--ssh-timeout"),
    (["--hostname", "a", "--domain", "x.org", "--health-timeout", "-inf"], "--health-timeout"),
    (["--hostname", "a", "--domain", "x.org", "--api-timeout", "inf"], "--api-timeout"),
    (["--hostname", "a", "--domain", "x.org", "--api-timeout", "soon"], "--api-timeout"),
    (["--hostname", "a", "--domain", "x.org", "--ssh-port", "70000"], "70000 is not a port"),
    (["--hostname", "a", "--domain", "x.org", "--ssh-port", "0"], "--ssh-port"),
    (["--hostname", "a", "--domain", "x.org", "--health-port", "65536"], "--health-port"),
    (["--hostname", ".".join(["a" * 62] * 4), "--domain", "x.org"], "at most 253"),
    (["--hostname", ".".join(["a" * 60] * 5), "--ssh", "root@h"], "not a valid DNS name"),
    (["--hostname", "a", "--domain", "x.org", "--bogus"], "unrecognized arguments"),
])
def test_invalid_arguments_are_one_line_errors(argv: list[str], needle: str):
    with pytest.raises(ProvisionError) as caught:
        parse(*argv)
    assert needle in caught.value.message
    assert "\n" not in caught.value.message


def test_longest_full_name_is_accepted():
    host = ".".join(["a" * 61] * 4)  # 247 characters; with ".x.org" exactly 253
    assert len(parse("--hostname", host, "--domain", "x.org").fqdn) == 253
    assert parse("--hostname", "a", "--domain", "x.org", "--ssh-port", "65535",
                 "--api-timeout", "0.5").ssh_port == 65535


def test_config_file_errors(tmp_path: Path):
    (tmp_path / "config.toml").write_text('domian = "x.org"\n')
    with pytest.raises(ProvisionError, match="unknown setting 'domian'"):
        parse("--hostname", "a", state=tmp_path)
    (tmp_path / "config.toml").write_text("domain = [\n")
    with pytest.raises(ProvisionError, match="cannot read"):
        parse("--hostname", "a", state=tmp_path)


@pytest.mark.parametrize(("value", "target"), [
    ("root@203.0.113.5", SshTarget("root", "203.0.113.5", 22)),
    ("root@lab.example.org:2222", SshTarget("root", "lab.example.org", 2222)),
    ("root@[2001:db8::1]:22", SshTarget("root", "2001:db8::1", 22)),
])
def test_ssh_targets(value: str, target: SshTarget):
    assert parse_target(value) == target


@pytest.mark.parametrize(("value", "needle"), [
    ("ubuntu@host", "as root"), ("host", "USER@HOST"), ("root@host:99999", "out of range"),
    ("root@", "USER@HOST"), ("root@2001:db8::1", "USER@HOST"),
])
def test_bad_ssh_targets(value: str, needle: str):
    with pytest.raises(ProvisionError, match=needle):
        parse_target(value)


def test_ssh_mode_takes_the_hostname_as_full_name():
    opts = parse("--hostname", "lab.uni.example", "--ssh", "root@10.0.0.5",
                 env={"DIGITALOCEAN_DOMAIN": "ignored.org"})
    assert (opts.mode, opts.fqdn, opts.domain) == ("ssh", "lab.uni.example", None)


def test_setup_command_passes_options_through():
    opts = parse("--hostname", "lab", "--domain", "x.org", "--email", "t@x.org", "--staging",
                 "--acme-server", "https://127.0.0.1:14000/dir", "--setup-only", "check,nginx",
                 "--remote-dir", "/srv/w/")
    assert setup_command(opts) == [
        "bash", "/srv/w/setup-node.sh", "lab.x.org", "--email", "t@x.org", "--staging",
        "--acme-server", "https://127.0.0.1:14000/dir", "--only", "check,nginx",
        "--dns-credentials", "/root/.config/workshop/digitalocean-dns.ini"]
    plain = parse("--hostname", "lab", "--domain", "x.org", "--no-tls", "--node-root", "/t/n/")
    assert setup_command(plain) == ["bash", "/opt/workshop/setup-node.sh", "lab.x.org",
                                    "--no-tls", "--dns-credentials",
                                    "/t/n/root/.config/workshop/digitalocean-dns.ini"]


def test_a_server_given_with_ssh_gets_no_dns_credentials():
    opts = parse("--hostname", "lab.uni.example", "--ssh", "root@10.0.0.5")
    assert setup_command(opts) == ["bash", "/opt/workshop/setup-node.sh", "lab.uni.example"]


def test_node_paths_and_sshd_reload():
    real = parse("--hostname", "lab", "--domain", "x.org")
    assert real.node.host_key == "/etc/ssh/ssh_host_ed25519_key"
    assert real.node.reload_sshd() == ("systemctl reload ssh || systemctl reload sshd || "
                                       'kill -HUP "$(cat /run/sshd.pid)"')
    test = parse("--hostname", "lab", "--domain", "x.org", "--node-root", "/tmp/node x")
    assert test.node.host_key == "/tmp/node x/etc/ssh/ssh_host_ed25519_key"
    # Under --node-root only that sshd is reloaded, never this machine's own.
    assert test.node.reload_sshd() == "kill -HUP \"$(cat '/tmp/node x/run/sshd.pid')\""
    assert real.firewall == "workshop-lab"
    with pytest.raises(ProvisionError, match="--node-root"):
        parse("--hostname", "lab", "--domain", "x.org", "--node-root", "relative")


def test_no_token_ever_reaches_a_command_line():
    # Commands run on the node are visible to its other processes: tokens go by SFTP.
    env = {"DIGITALOCEAN_TOKEN": "dop_v1_account-token-0000000000",
           "DIGITALOCEAN_DNS_TOKEN": "dop_v1_dns-only-1111111"}
    opts = parse("--hostname", "lab", "--domain", "x.org", "--email", "t@x.org", env=env)
    commands = " ".join([*setup_command(opts), opts.node.reload_sshd(), repr(opts)])
    assert "dop_v1" not in commands


def test_dns_credentials_prefer_the_dns_only_token():
    path = "/root/.config/workshop/digitalocean-dns.ini"
    api = "dop_v1_account-token-0000000000"
    dns_only = dns_credentials({"DIGITALOCEAN_DNS_TOKEN": " dop_v1_dns-only-1111111 \n"},
                               api, path)
    assert dns_only.dns_only and dns_only.source == "DIGITALOCEAN_DNS_TOKEN"
    assert dns_only.content == b"dns_digitalocean_token = dop_v1_dns-only-1111111\n"
    assert "dop_v1_dns-only" not in repr(dns_only)  # never in a log line by accident
    assert REDACT("x dop_v1_dns-only-1111111 y") == "x [redacted] y"
    fallback = dns_credentials({"DIGITALOCEAN_DNS_TOKEN": "  "}, api, path)
    assert not fallback.dns_only
    assert fallback.content == f"dns_digitalocean_token = {api}\n".encode()
    with pytest.raises(ProvisionError, match="DIGITALOCEAN_DNS_TOKEN contains"):
        dns_credentials({"DIGITALOCEAN_DNS_TOKEN": "dop_v1_a\nb = c"}, api, path)


def test_token_comes_only_from_the_environment():
    with pytest.raises(ProvisionError, match="DIGITALOCEAN_TOKEN is not set"):
        token_from_env({"DIGITALOCEAN_TOKEN": "  "})
    assert token_from_env({"DIGITALOCEAN_TOKEN": "dop_v1_abc\n"}) == "dop_v1_abc"


def test_help_tells_about_tokens_records_firewall_and_host_keys():
    from provision.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    for needle in ("DIGITALOCEAN_DNS_TOKEN recommended", "domain:read", "A records HOST and "
                   "*.HOST", "cloud firewall workshop-NAME (TCP 22, 80, 443 in; everything out)",
                   "replaced by a new one over the verified connection",
                   "its DNS A records (HOST, *.HOST) and its cloud firewall"):
        assert needle in text, needle
