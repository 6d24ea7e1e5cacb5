"""create-node.py's DigitalOcean path end to end: the real script as a subprocess, the fake
API over https, and each created droplet 'booting' as a real sshd with the host key it was
handed in cloud-init user data."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from provision.hostkeys import public_key_from_line, sha256_fingerprint
from tests.e2e.provisioning.support import DOMAIN, FQDN, PROGRESS, assert_one_error_line
from tests.fakes.digitalocean import FakeDigitalOcean
from tests.fakes.hubhealth import HubHealth
from tests.fakes.sshd import fingerprint, keygen
from tests.fakes.tls import make_ca


def test_create_pins_host_key_uploads_and_reports_url(
        run, fake_do: FakeDigitalOcean, droplet_boot, hub, droplet_args, remote_dir: Path,
        tmp_path: Path):
    result = run(*droplet_args, "--email", "teacher@example.org")
    assert result.returncode == 0, result.stdout + result.stderr

    # One droplet, tagged, with the size, image and SSH key asked for.
    (droplet,) = fake_do.droplets.values()
    assert droplet["name"] == "lab" and droplet["tags"] == ["workshop-appliance"]
    (create,) = [c.body for c in fake_do.calls("POST", "/v2/droplets")]
    assert create["size"] == "s-4vcpu-8gb" and create["image"] == "ubuntu-24-04-x64"
    assert create["ssh_keys"] == [fake_do.ssh_keys[1]["id"]]

    # The first login expected the host key handed over in cloud-init (sshd was started
    # from the user data); then a new key replaced it, which is pinned now and printed.
    handed_over = public_key_from_line(droplet_boot.cloud_config["ssh_keys"]["ed25519_public"])
    assert f"expecting host key {sha256_fingerprint(handed_over)}" in result.stdout
    assert droplet_boot.cloud_config["ssh_deletekeys"] is True
    pinned = tmp_path / "state" / "droplets" / "lab" / "ssh_host_ed25519_key"
    assert stat.S_IMODE(pinned.stat().st_mode) == 0o600
    assert f"now pinned {fingerprint(Path(f'{pinned}.pub'))}" in result.stdout

    # DNS: one A record for lab and one for *.lab, pointing at the droplet's address.
    assert [r["data"] for r in fake_do.a_records(DOMAIN, "lab")] == ["127.0.0.1"]
    assert [r["data"] for r in fake_do.a_records(DOMAIN, "*.lab")] == ["127.0.0.1"]

    # The checkout landed and setup-node.sh ran on it, its output streamed with times.
    assert (remote_dir / "setup-node.sh").read_bytes() == \
        (Path(__file__).parents[3] / "setup-node.sh").read_bytes()
    assert (remote_dir / "services" / "dashboard" / "app.py").is_file()
    assert (remote_dir / "provision" / "ssh.py").is_file()
    assert (remote_dir / "home" / "Readme.txt").is_file()
    assert sorted(p.name for p in (remote_dir / "tmp").iterdir()) == ["Readme.txt"]
    assert not (remote_dir / ".git").exists() and not (remote_dir / ".venv").exists()
    assert not (remote_dir / "etc" / "jupyterhub" / "users.txt").exists()
    node_lines = [line for line in result.stdout.splitlines() if "node| ==> [check]" in line]
    assert len(node_lines) == 1 and PROGRESS.match(node_lines[0])
    assert "droplet lab created (id" in result.stdout
    assert all(PROGRESS.match(line) for line in result.stdout.splitlines()[:5])

    # The end: health checked with the public name, URL and how to add users printed.
    assert hub.hosts_seen and all(h.startswith(FQDN) for h in hub.hosts_seen)
    assert f"https://{FQDN}/" in result.stdout
    assert f"{remote_dir}/etc/jupyterhub/users.txt" in result.stdout


def test_rerun_reuses_droplet_records_and_firewall(run, fake_do: FakeDigitalOcean,
                                                   droplet_args):
    assert run(*droplet_args).returncode == 0
    before = len(fake_do.log)
    again = run(*droplet_args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing droplet lab" in again.stdout
    assert "lab.workshop.test → 127.0.0.1 already" in again.stdout
    assert "*.lab.workshop.test → 127.0.0.1 already" in again.stdout
    assert "firewall workshop-lab in place" in again.stdout
    assert len(fake_do.droplets) == 1
    assert len(fake_do.calls("POST", "/v2/droplets")) == 1
    assert len(fake_do.a_records(DOMAIN, "lab")) == len(fake_do.a_records(DOMAIN, "*.lab")) == 1
    assert len(fake_do.firewalls) == 1
    # The second run changed nothing at DigitalOcean.
    assert {c.method for c in fake_do.log[before:]} == {"GET"}
    fake_do.add_record(DOMAIN, "A", "lab", "203.0.113.9")  # someone added a second one
    before = len(fake_do.log)
    plan = run(*droplet_args, "--dry-run")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "would reuse droplet lab" in plan.stdout
    assert "would point lab.workshop.test at 127.0.0.1 (now: 127.0.0.1, 203.0.113.9)" in \
        plan.stdout
    assert "would point *.lab.workshop.test at 127.0.0.1 (now: 127.0.0.1)" in plan.stdout
    assert "would keep firewall workshop-lab" in plan.stdout
    assert {c.method for c in fake_do.log[before:]} == {"GET"}


def test_stale_a_record_is_updated_to_the_droplet_ip(run, fake_do: FakeDigitalOcean,
                                                     droplet_args):
    # An earlier droplet of that name had another address; a second A record too.
    old = fake_do.add_record(DOMAIN, "A", "lab", "203.0.113.7")
    fake_do.add_record(DOMAIN, "A", "lab", "203.0.113.8")
    other = fake_do.add_record(DOMAIN, "A", "www", "203.0.113.9")
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    records = fake_do.a_records(DOMAIN, "lab")
    assert [(r["id"], r["data"]) for r in records] == [(old["id"], "127.0.0.1")]
    assert fake_do.calls("PATCH", rf"/v2/domains/{DOMAIN}/records/{old['id']}")
    assert fake_do.a_records(DOMAIN, "www") == [other]  # not ours: untouched
    assert "updated lab.workshop.test: 203.0.113.7 → 127.0.0.1" in result.stdout


def test_recreated_droplet_gets_the_record_moved_to_its_new_ip(
        run, fake_do: FakeDigitalOcean, droplet_boot, droplet_args, hub, ca,
        tmp_path: Path):
    assert run(*droplet_args).returncode == 0
    (first_id,) = fake_do.droplets
    # Someone deleted the droplet in the control panel; the next one gets another address.
    fake_do.remove_droplet(first_id)
    fake_do.droplet_ip = "127.0.0.2"
    moved = HubHealth(ca, tmp_path, [FQDN], listen="127.0.0.2").start()
    try:
        args = [a if a != str(hub.port) else str(moved.port) for a in droplet_args]
        result = run(*args)
    finally:
        moved.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    (second_id,) = fake_do.droplets
    assert second_id != first_id
    assert f"droplet lab created (id {second_id}" in result.stdout
    assert [r["data"] for r in fake_do.a_records(DOMAIN, "lab")] == ["127.0.0.2"]
    assert [r["data"] for r in fake_do.a_records(DOMAIN, "*.lab")] == ["127.0.0.2"]
    assert "updated lab.workshop.test: 127.0.0.1 → 127.0.0.2" in result.stdout
    assert "updated *.lab.workshop.test: 127.0.0.1 → 127.0.0.2" in result.stdout
    # The firewall lost the deleted droplet and follows the new one.
    (wall,) = fake_do.firewalls_named("workshop-lab")
    assert wall["droplet_ids"] == [second_id]
    assert f"attached firewall workshop-lab to droplet {second_id}" in result.stdout
    # The new droplet got the pinned key in its user data again, so it is replaced again.
    assert result.stdout.count("replaced the droplet's SSH host key") == 1
    assert moved.hosts_seen  # the health check went to the new address


def test_destroy_removes_droplet_records_firewall_and_pin(
        run, fake_do: FakeDigitalOcean, droplet_args, tmp_path: Path):
    assert run(*droplet_args).returncode == 0
    www = fake_do.add_record(DOMAIN, "A", "www", "127.0.0.1")  # same IP, other name
    other_wall = fake_do.add_firewall("workshop-other", [], [{"protocol": "tcp", "ports": "22",
                                      "sources": {"addresses": ["0.0.0.0/0"]}}], [])

    planned = run("--hostname", "lab", "--domain", DOMAIN, "--destroy", "--dry-run")
    assert planned.returncode == 0 and "would delete droplet lab" in planned.stdout
    assert "the A records lab.workshop.test and *.lab.workshop.test → 127.0.0.1" in \
        planned.stdout
    assert "would delete firewall workshop-lab" in planned.stdout
    assert len(fake_do.droplets) == 1 and len(fake_do.a_records(DOMAIN, "lab")) == 1
    assert len(fake_do.firewalls) == 2

    refused = run("--hostname", "lab", "--domain", DOMAIN, "--destroy")
    assert_one_error_line(refused, "--yes")
    assert refused.stdout == ""  # the refusal only: nothing claims to be deleting
    assert len(fake_do.droplets) == 1

    result = run("--hostname", "lab", "--domain", DOMAIN, "--destroy", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert fake_do.droplets == {}
    assert fake_do.a_records(DOMAIN, "lab") == fake_do.a_records(DOMAIN, "*.lab") == []
    assert fake_do.a_records(DOMAIN, "www") == [www]
    assert [r["type"] for r in fake_do.domains[DOMAIN]].count("NS") == 2
    assert list(fake_do.firewalls.values()) == [other_wall]  # only ours went
    assert "deleted firewall workshop-lab" in result.stdout
    assert not (tmp_path / "state" / "droplets" / "lab").exists()

    again = run("--hostname", "lab", "--domain", DOMAIN, "--destroy", "--yes")
    assert again.returncode == 0 and "nothing to destroy" in again.stdout


def test_dry_run_changes_nothing(run, fake_do: FakeDigitalOcean, droplet_args, tmp_path: Path):
    result = run(*droplet_args, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would create droplet lab" in result.stdout
    assert "s-4vcpu-8gb: 4 vCPU, 8 GB RAM" in result.stdout
    assert {c.method for c in fake_do.log} == {"GET"}
    assert fake_do.droplets == {}
    assert not (tmp_path / "state" / "droplets").exists()


def test_create_answered_500_after_creating_leaves_one_droplet(
        run, fake_do: FakeDigitalOcean, droplet_args):
    # The droplet is made, but the answer is lost: pydo alone would resend the create.
    fake_do.fail("POST", "/v2/droplets", 500, times=1, after=True)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(fake_do.droplets) == 1
    assert [c.status for c in fake_do.calls("POST", "/v2/droplets")] == [500]
    assert "exists (id" in result.stdout


@pytest.mark.parametrize("status", [500, 502])
def test_record_create_answered_5xx_after_creating_leaves_one_record(
        run, fake_do: FakeDigitalOcean, droplet_args, status: int):
    # Each record is made, but the answer is lost: a blind retry would make a second one.
    fake_do.fail("POST", rf"/v2/domains/{DOMAIN}/records", status, times=2, after=True)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("lab", "*.lab"):
        assert [r["data"] for r in fake_do.a_records(DOMAIN, name)] == ["127.0.0.1"]
    posts = fake_do.calls("POST", rf"/v2/domains/{DOMAIN}/records")
    # Each checked, found, not sent again.
    assert [(c.status, c.body["name"]) for c in posts] == [(status, "lab"), (status, "*.lab")]
    assert result.stdout.count(f"HTTP {status}") == 2
    assert result.stdout.count("but the record was made: using it") == 2


def test_create_answered_503_before_creating_is_retried(run, fake_do: FakeDigitalOcean,
                                                        droplet_args):
    fake_do.fail("POST", "/v2/droplets", 503, times=1)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.status for c in fake_do.calls("POST", "/v2/droplets")] == [503, 202]
    assert len(fake_do.droplets) == 1


def test_rate_limit_and_server_errors_are_retried(run, fake_do: FakeDigitalOcean,
                                                  droplet_args):
    fake_do.fail("GET", "/v2/account/keys", 429, times=2, retry_after=1)
    # pydo does not retry answers itself (provision/api.py): every attempt is ours.
    fake_do.fail("GET", "/v2/droplets", 500, times=3)
    fake_do.fail("POST", r"/v2/domains/[^/]+/records", 429, times=1, retry_after=1)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.status for c in fake_do.calls("GET", "/v2/account/keys")] == [429, 429, 200]
    statuses = [c.status for c in fake_do.calls("GET", "/v2/droplets")]
    assert statuses[:4] == [500] * 3 + [200]
    assert result.stdout.count("DigitalOcean API busy (listing droplets tagged") == 3
    # The 429 answered the first record's create (nothing made): sent again, then *.lab.
    assert [(c.status, c.body["name"]) for c in fake_do.calls(
        "POST", r"/v2/domains/[^/]+/records")] == [(429, "lab"), (201, "lab"), (201, "*.lab")]
    assert "asks to wait 1s before retrying creating the A record lab.workshop.test" in \
        result.stdout
    assert len(fake_do.a_records(DOMAIN, "lab")) == 1


def test_slow_api_is_waited_for(run, fake_do: FakeDigitalOcean, droplet_args):
    fake_do.slow("GET", r"/v2/actions/\d+", seconds=1.5, times=2)
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(fake_do.droplets) == 1


def test_pagination_is_followed(run, fake_do: FakeDigitalOcean, droplet_args):
    fake_do.max_per_page = 1  # the instructor's key is on page 2, the droplet on page 3
    fake_do.add_droplet("other-1", "198.51.100.1", tags=("workshop-appliance",))
    other = fake_do.add_droplet("other-2", "198.51.100.2", tags=("workshop-appliance",))
    fake_do.add_firewall("workshop-other-2", [other["id"]], [
        {"protocol": "tcp", "ports": "22", "sources": {"addresses": ["0.0.0.0/0"]}}], [])
    assert run(*droplet_args).returncode == 0
    again = run(*droplet_args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing droplet lab" in again.stdout
    assert "lab.workshop.test → 127.0.0.1 already" in again.stdout  # records on later pages
    assert "firewall workshop-lab in place" in again.stdout  # ours is on page 2
    assert len(fake_do.droplets) == 3 and len(fake_do.firewalls) == 2


def test_changed_host_key_is_refused(run, fake_do: FakeDigitalOcean, droplet_boot,
                                     droplet_args, servers, remote_dir: Path, tmp_path: Path):
    assert run(*droplet_args).returncode == 0
    marker = remote_dir / "setup-node.sh"
    marker.write_text("# left alone\n")
    # The 'droplet' now answers with another host key (rebuilt, or someone in between).
    droplet_boot.sshd.stop()
    other = tmp_path / "impostor-host-key"
    keygen(other, "impostor")
    servers.sshd(other, droplet_boot.port)
    result = run(*droplet_args)
    line = assert_one_error_line(result, "host key mismatch", fingerprint(Path(f"{other}.pub")))
    assert "refusing" in line
    assert marker.read_text() == "# left alone\n"  # nothing was uploaded


def test_image_host_key_during_first_boot_is_waited_out(run, droplet_boot, droplet_args,
                                                        tmp_path: Path):
    # The new droplet's sshd first shows the image's key, then cloud-init installs ours:
    # create-node.py keeps waiting (never connecting with the wrong key) and succeeds.
    droplet_boot.image_key = tmp_path / "image-host-key"
    keygen(droplet_boot.image_key, "image")
    result = run(*droplet_args)
    assert result.returncode == 0, result.stdout + result.stderr
    image = fingerprint(Path(f"{droplet_boot.image_key}.pub"))
    assert f"host key {image} is not the pinned one yet" in result.stdout
    assert "node| ==> [check]" in result.stdout


def test_existing_droplet_without_local_pin_is_refused(run, fake_do: FakeDigitalOcean,
                                                       droplet_args):
    fake_do.add_droplet("lab", "127.0.0.1", tags=("workshop-appliance",))
    assert_one_error_line(run(*droplet_args), "host key is not pinned")


def test_duplicate_droplets_are_reported(run, fake_do: FakeDigitalOcean, droplet_args):
    for _ in range(2):
        fake_do.add_droplet("lab", "127.0.0.1", tags=("workshop-appliance",))
    assert_one_error_line(run(*droplet_args), "2 droplets are named lab")


def test_setup_failure_names_the_step_and_shows_the_tail(run, droplet_args):
    args = [a if a != "check" else "check,nosuchstep" for a in droplet_args]
    result = run(*args)
    assert result.returncode == 2
    first, *tail = result.stderr.strip().splitlines()
    assert first.startswith("create-node: error: setup-node.sh failed at step nosuchstep")
    assert any("FAILED at step nosuchstep" in line for line in tail)
    assert any("==> [check]" in line for line in tail)
    assert len(tail) <= 20
    assert "Traceback" not in result.stderr


def test_health_never_answering_fails(run, hub, droplet_args):
    hub.status = 502
    args = [*droplet_args, "--health-timeout", "2"]
    assert_one_error_line(run(*args), "/hub/health", "did not answer 200", "HTTP 502")


def test_untrusted_certificate_fails_health_check(run, droplet_args, hub, tmp_path: Path):
    # The node presents a certificate from a CA nobody trusts: that is not success.
    rogue = HubHealth(make_ca(tmp_path / "rogue-ca"), tmp_path, [FQDN]).start()
    try:
        args = [a if a != str(hub.port) else str(rogue.port) for a in droplet_args]
        result = run(*args, "--health-timeout", "2")
    finally:
        rogue.stop()
    assert_one_error_line(result, "/hub/health", "certificate not valid")
