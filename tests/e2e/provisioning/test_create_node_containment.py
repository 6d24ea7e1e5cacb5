"""What create-node.py sets up so participants stay contained, end to end against the fake
API and a real sshd: the wildcard DNS record for their subdomains, the cloud firewall, and
certbot's DNS credentials on the node (never shown, never in a command line)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.e2e.provisioning.support import DNS_TOKEN, DOMAIN, TOKEN
from tests.fakes.digitalocean import FakeDigitalOcean

EVERYWHERE = {"addresses": ["0.0.0.0/0", "::/0"]}
CREDENTIALS = "root/.config/workshop/digitalocean-dns.ini"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_firewall_is_created_with_our_rules_for_the_droplet(run, fake_do: FakeDigitalOcean,
                                                            droplet_args):
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    (droplet_id,) = fake_do.droplets
    (wall,) = fake_do.firewalls.values()
    assert wall["name"] == "workshop-lab" and wall["droplet_ids"] == [droplet_id]
    # As DigitalOcean answers them: "0" is every port (and icmp's only value).
    assert sorted((r["protocol"], r["ports"], tuple(r["sources"]["addresses"]))
                  for r in wall["inbound_rules"]) == [
        ("tcp", port, ("0.0.0.0/0", "::/0")) for port in ("22", "443", "80")]
    assert sorted((r["protocol"], r["ports"], r["destinations"])
                  for r in wall["outbound_rules"]) == [
        ("icmp", "0", EVERYWHERE), ("tcp", "0", EVERYWHERE), ("udp", "0", EVERYWHERE)]
    assert wall["tags"] == []
    (create,) = fake_do.calls("POST", "/v2/firewalls")
    assert create.status == 202
    assert "created firewall workshop-lab (in: TCP 22, 80, 443 from anywhere; out: " \
        "everything)" in result.stdout


def test_firewall_is_corrected_and_never_duplicated(run, fake_do: FakeDigitalOcean,
                                                    droplet_args):
    other = fake_do.add_droplet("other", "198.51.100.7")
    wide_open = [{"protocol": "tcp", "ports": "1-65535", "sources": EVERYWHERE}]
    first = fake_do.add_firewall("workshop-lab", [other["id"]], wide_open, [])
    second = fake_do.add_firewall("workshop-lab", [], wide_open, [])  # same name again
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    droplet_id = max(fake_do.droplets)
    (wall,) = fake_do.firewalls_named("workshop-lab")
    (gone,) = {first["id"], second["id"]} - {wall["id"]}
    assert [c.status for c in fake_do.calls("DELETE", rf"/v2/firewalls/{gone}")] == [204]
    # The one kept is corrected in place: our rules, our droplet only.
    assert [c.status for c in fake_do.calls("PUT", rf"/v2/firewalls/{wall['id']}")] == [200]
    assert wall["droplet_ids"] == [droplet_id]
    assert sorted(r["ports"] for r in wall["inbound_rules"]) == ["22", "443", "80"]
    assert len(wall["outbound_rules"]) == 3
    assert "deleted a second firewall workshop-lab" in result.stdout
    assert "corrected firewall workshop-lab (rules and droplets" in result.stdout
    assert not fake_do.calls("POST", "/v2/firewalls")


def test_firewall_create_answered_500_after_creating_leaves_one(
        run, fake_do: FakeDigitalOcean, droplet_args):
    fake_do.fail("POST", "/v2/firewalls", 500, times=1, after=True)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(fake_do.firewalls_named("workshop-lab")) == 1
    assert [c.status for c in fake_do.calls("POST", "/v2/firewalls")] == [500]
    assert "HTTP 500" in result.stdout and "it was made: using it" in result.stdout


def test_firewall_refused_by_the_api_is_one_line(run, fake_do: FakeDigitalOcean, droplet_args):
    # The spec lists 400 for a firewall create, which pydo returns instead of raising.
    fake_do.fail("POST", "/v2/firewalls", 400, message="name is already in use")
    result = run(*droplet_args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "create-node: error: DigitalOcean API error while creating firewall workshop-lab: "
        "bad_request: name is already in use"]


def test_dns_only_token_goes_to_the_node_private(run, fake_do: FakeDigitalOcean, droplet_args,
                                                 node_root: Path):
    result = run(*droplet_args, env={"DIGITALOCEAN_DNS_TOKEN": DNS_TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    ini = node_root / CREDENTIALS
    assert ini.read_text() == f"dns_digitalocean_token = {DNS_TOKEN}\n"
    assert mode(ini) == 0o600 and ini.stat().st_uid == 0
    assert mode(ini.parent) == 0o700 and mode(ini.parent.parent) == 0o700
    assert f"uploaded certbot's DNS credentials (DIGITALOCEAN_DNS_TOKEN) to {ini} " \
        "(mode 0600)" in result.stdout
    assert "DIGITALOCEAN_DNS_TOKEN is not set" not in result.stdout


def test_without_a_dns_token_the_account_token_is_used_and_a_dns_one_advised(
        run, fake_do: FakeDigitalOcean, droplet_args, node_root: Path):
    (node_root / CREDENTIALS).parent.mkdir(parents=True)
    (node_root / CREDENTIALS).write_text("stale, readable by all\n")
    (node_root / CREDENTIALS).chmod(0o644)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    ini = node_root / CREDENTIALS
    assert ini.read_text() == f"dns_digitalocean_token = {TOKEN}\n"
    assert mode(ini) == 0o600  # an existing file is made private before it is written
    advice = [line for line in result.stdout.splitlines()
              if "DIGITALOCEAN_DNS_TOKEN is not set" in line]
    assert len(advice) == 1 and "only the domain scopes" in advice[0]


def test_dry_run_shows_records_firewall_rotation_and_credentials(
        run, fake_do: FakeDigitalOcean, droplet_args, node_root: Path, tmp_path: Path):
    result = run(*droplet_args, "--dry-run", env={"DIGITALOCEAN_DNS_TOKEN": DNS_TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"would create the A records lab.{DOMAIN} and *.lab.{DOMAIN} → the droplet's " \
        "IPv4" in out
    assert "would create firewall workshop-lab (in: TCP 22, 80, 443 from anywhere; out: " \
        "everything) for the droplet" in out
    assert "would replace the droplet's SSH host key" in out
    ini = node_root / CREDENTIALS
    assert f"would upload certbot's DNS credentials (DIGITALOCEAN_DNS_TOKEN) to {ini}" in out
    (command,) = [line for line in out.splitlines() if "would run: " in line]
    assert command.endswith(f"--only check --dns-credentials {ini}")
    assert {c.method for c in fake_do.log} == {"GET"} and fake_do.firewalls == {}
    assert not node_root.exists() and not (tmp_path / "state").exists()
