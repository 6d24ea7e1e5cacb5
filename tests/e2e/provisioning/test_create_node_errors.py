"""Every expected failure of create-node.py is one readable line on stderr and exit 2,
never a traceback, and the token never shows (the `run` fixture checks that on every run)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.provisioning.support import DOMAIN, TOKEN, assert_one_error_line
from tests.fakes.digitalocean import FakeDigitalOcean
from tests.fakes.sshd import free_port, keygen

BASE = ("--hostname", "lab", "--domain", DOMAIN)


def nothing_changed(fake: FakeDigitalOcean) -> bool:
    return all(call.method == "GET" for call in fake.log) and fake.droplets == {}


def test_no_token(run, fake_do: FakeDigitalOcean):
    result = run(*BASE, env={"DIGITALOCEAN_TOKEN": None})
    assert_one_error_line(result, "DIGITALOCEAN_TOKEN is not set")
    assert fake_do.log == []


def test_token_refused(run, fake_do: FakeDigitalOcean):
    wrong = "dop_v1_WRONG-token-0000000000000000000000000000000000"
    result = run(*BASE, env={"DIGITALOCEAN_TOKEN": wrong})
    assert_one_error_line(result, "refused the token", "401")
    assert wrong not in result.stdout + result.stderr
    assert [c.status for c in fake_do.log] == [401]


def test_token_is_never_printed_even_when_the_api_echoes_it(run, fake_do: FakeDigitalOcean):
    # A misbehaving proxy that quotes the request's Authorization header in its error is
    # the worst case: the message create-node.py shows then contains the token.
    fake_do.fail("GET", f"/v2/domains/{DOMAIN}", 400, message=f"bad header: Bearer {TOKEN}")
    result = run(*BASE)
    line = assert_one_error_line(result, "HTTP 400", "bad header: Bearer [redacted]")
    assert TOKEN not in line  # and `run` checks all of stdout and stderr


def test_unknown_size(run, fake_do: FakeDigitalOcean):
    assert_one_error_line(run(*BASE, "--size", "huge"), "unknown size 'huge'", "small, medium,"
                          " large")
    assert fake_do.log == []


def test_size_unknown_to_digitalocean_is_refused_before_anything(
        run, fake_do: FakeDigitalOcean, droplet_args, tmp_path: Path):
    fake_do.max_per_page = 2  # the size list is paginated like the real one
    result = run(*droplet_args, "--size", "s-99vcpu-999gb")
    assert_one_error_line(result, "size s-99vcpu-999gb", "not offered by DigitalOcean")
    assert "holds about" not in result.stdout  # no capacity line for a size that is not there
    assert not (tmp_path / "state" / "droplets").exists()  # no host key was made
    assert nothing_changed(fake_do)
    assert len(fake_do.calls("GET", "/v2/sizes")) == 4  # 7 sizes, 2 a page: every page read


def test_size_not_offered_in_the_region_is_refused(run, fake_do: FakeDigitalOcean,
                                                    droplet_args, tmp_path: Path):
    fake_do.size_regions["c-8"] = ["nyc3"]
    result = run(*droplet_args, "--size", "c-8", "--region", "fra1")
    assert_one_error_line(result, "size c-8 is not available in region fra1", "nyc3")
    assert not (tmp_path / "state" / "droplets").exists()
    assert nothing_changed(fake_do)


def test_raw_size_slug_is_passed_through(run, fake_do: FakeDigitalOcean, droplet_args):
    assert run(*droplet_args, "--size", "c-8").returncode == 0
    assert [c.body["size"] for c in fake_do.calls("POST", "/v2/droplets")] == ["c-8"]


def test_domain_not_on_account(run, fake_do: FakeDigitalOcean):
    result = run("--hostname", "lab", "--domain", "elsewhere.test")
    assert_one_error_line(result, "domain elsewhere.test is not managed")
    assert nothing_changed(fake_do)


def test_no_domain_anywhere(run, fake_do: FakeDigitalOcean):
    assert_one_error_line(run("--hostname", "lab"), "no domain", "DIGITALOCEAN_DOMAIN")


def test_domain_from_environment_and_config(run, fake_do: FakeDigitalOcean, tmp_path: Path):
    from_env = run("--hostname", "lab", "--dry-run", env={"DIGITALOCEAN_DOMAIN": DOMAIN})
    assert from_env.returncode == 0, from_env.stderr
    assert "lab.workshop.test" in from_env.stdout
    state = tmp_path / "configured"
    state.mkdir()
    (state / "config.toml").write_text(f'domain = "{DOMAIN}"\nregion = "ams3"\n')
    from_config = run("--hostname", "lab", "--dry-run", state_dir=state)
    assert from_config.returncode == 0, from_config.stderr
    assert "in ams3" in from_config.stdout and "lab.workshop.test" in from_config.stdout


def test_ssh_key_missing_locally(run, fake_do: FakeDigitalOcean, tmp_path: Path):
    result = run(*BASE, ssh_key=tmp_path / "no-such-key")
    assert_one_error_line(result, "no-such-key not found")
    assert fake_do.log == []


def test_unreadable_private_key_is_refused_before_anything_is_made(
        run, fake_do: FakeDigitalOcean, user_key, tmp_path: Path):
    # A valid .pub (on the account) next to a private key that cannot be read.
    key = tmp_path / "broken_key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    Path(f"{key}.pub").write_text(user_key.public + "\n")
    result = run(*BASE, ssh_key=key)
    assert_one_error_line(result, f"cannot read SSH key {key}")
    assert fake_do.log == [] and fake_do.droplets == {}
    assert fake_do.a_records(DOMAIN, "lab") == []
    assert not (tmp_path / "state" / "droplets").exists()
    dry = run(*BASE, "--dry-run", ssh_key=key)  # the plan says so too
    assert_one_error_line(dry, f"cannot read SSH key {key}")


def test_ssh_key_not_on_account(run, fake_do: FakeDigitalOcean, tmp_path: Path):
    key = tmp_path / "new_key"
    keygen(key, "not-uploaded")
    result = run(*BASE, ssh_key=key)
    assert_one_error_line(result, f"{key}.pub", "is not on the DigitalOcean account")
    assert nothing_changed(fake_do)


def test_api_unreachable(run, fake_do: FakeDigitalOcean):
    result = run(*BASE, "--api-url", f"https://127.0.0.1:{free_port()}")
    assert_one_error_line(result, "cannot reach the DigitalOcean API at https://127.0.0.1:")


def test_plain_http_api_url_is_refused(run, fake_do: FakeDigitalOcean):
    assert_one_error_line(run(*BASE, "--api-url", "http://127.0.0.1:9"), "https://")


def test_api_keeps_failing(run, fake_do: FakeDigitalOcean):
    fake_do.fail("GET", "/v2/domains/.*", 503, times=1000)
    result = run(*BASE, "--dry-run", "--api-timeout", "3")
    assert_one_error_line(result, "kept failing", "HTTP 503")


def test_retry_after_beyond_the_budget_fails_at_once(run, fake_do: FakeDigitalOcean):
    fake_do.fail("GET", "/v2/account/keys", 429, times=10, retry_after=60)
    started = time.monotonic()
    result = run(*BASE, "--dry-run", "--api-timeout", "10")
    assert time.monotonic() - started < 10  # neither pydo nor create-node.py waited it out
    assert_one_error_line(result, "asks to wait 60s", "HTTP 429", "--api-timeout 10")
    assert [c.status for c in fake_do.calls("GET", "/v2/account/keys")] == [429]


def test_retry_after_is_announced_then_waited(run, fake_do: FakeDigitalOcean):
    fake_do.fail("GET", "/v2/account/keys", 429, times=1, retry_after=2)
    result = run(*BASE, "--dry-run", "--api-timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "asks to wait" in x]
    assert "asks to wait 2s before retrying listing the account's SSH keys" in line
    assert "HTTP 429" in line
    assert [c.status for c in fake_do.calls("GET", "/v2/account/keys")] == [429, 200]


def test_argument_errors_are_one_line(run, fake_do: FakeDigitalOcean):
    assert_one_error_line(run("--domain", DOMAIN), "--hostname", "see --help")
    assert_one_error_line(run(*BASE, "--ssh", "root@127.0.0.1", "--destroy"), "--destroy")
    assert_one_error_line(run("--hostname", "lab", "--ssh", "ubuntu@127.0.0.1"), "as root")
    assert_one_error_line(run("--hostname", "la_b!", "--domain", DOMAIN), "not a valid DNS")
    assert_one_error_line(run(*BASE, "--no-tls", "--email", "a@b.c"), "--no-tls")
    assert_one_error_line(run(*BASE, "--setup-only", "check;rm"), "--setup-only")
    assert_one_error_line(run(*BASE, "--users", "/no/such/users.txt"), "--users")
    assert_one_error_line(run(*BASE, "--ssh-port", "70000"), "--ssh-port", "70000")
    assert_one_error_line(run(*BASE, "--ssh-timeout", "nan"), "--ssh-timeout", "nan")
    assert_one_error_line(run(*BASE, "--api-timeout", "inf"), "--api-timeout", "inf")
    long_name = ".".join(["a" * 60] * 4)  # 243 characters, 257 with the domain
    assert_one_error_line(run("--hostname", long_name, "--domain", DOMAIN), "253")
    assert fake_do.log == []
