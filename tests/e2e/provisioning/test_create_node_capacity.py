"""create-node.py checks the size against --users before creating anything: the real
script as a subprocess against the fake DigitalOcean API (and, when it proceeds, a real
sshd as the droplet)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.provisioning.support import DOMAIN, assert_one_error_line
from tests.fakes.digitalocean import FakeDigitalOcean


def users_file(tmp_path: Path, participants: int, instructors: int = 1,
               broken: int = 0) -> Path:
    lines = [f"p{i:03d}:password-{i}" for i in range(participants)]
    lines += ["no colon here", "Bad Name:x", "root:x"][:broken]
    lines += ["", "[instructors]"] + [f"teacher{i}:secret-{i}" for i in range(instructors)]
    path = tmp_path / "my-class.txt"
    path.write_text("# a class\n" + "\n".join(lines) + "\n")
    return path


def nothing_created(fake: FakeDigitalOcean) -> bool:
    return fake.droplets == {} and all(call.method == "GET" for call in fake.log)


def test_too_small_is_refused_naming_the_size_that_fits(run, fake_do: FakeDigitalOcean,
                                                        droplet_args, tmp_path: Path):
    users = users_file(tmp_path, 78, instructors=2, broken=1)  # 80 people; medium holds 73
    result = run(*droplet_args, "--users", str(users))
    line = assert_one_error_line(
        result, f"{users} lists 80 people (78 participants, 2 instructors, 1 broken line "
        "not counted)", "medium (s-4vcpu-8gb, 8 GB RAM) holds about 73",
        "use --size large (s-8vcpu-16gb, holds 162)", "--force")
    assert "Traceback" not in line
    assert nothing_created(fake_do)
    assert fake_do.calls("GET", "/v2/droplets")  # it did look for an existing one first
    assert "holds about 73 participants" in result.stdout  # the plan line came first


def test_too_small_is_refused_in_a_dry_run_too(run, fake_do: FakeDigitalOcean,
                                                tmp_path: Path):
    users = users_file(tmp_path, 29)
    result = run("--hostname", "lab", "--domain", DOMAIN, "--size", "small", "--dry-run",
                 "--users", str(users))
    assert_one_error_line(result, "30 people", "small (s-2vcpu-4gb, 4 GB RAM) holds about 29",
                          "use --size medium (s-4vcpu-8gb, holds 73)")
    assert nothing_created(fake_do)


def test_no_size_in_the_table_fits_suggests_a_bigger_slug(run, fake_do: FakeDigitalOcean,
                                                          tmp_path: Path):
    users = users_file(tmp_path, 199)
    result = run("--hostname", "lab", "--domain", DOMAIN, "--size", "large", "--dry-run",
                 "--users", str(users))
    assert_one_error_line(result, "200 people", "holds about 162",
                          "none of small, medium, large does", "about 20 GB RAM",
                          "--size g-8vcpu-32gb (holds 338)")
    assert nothing_created(fake_do)


def test_force_warns_and_creates_the_droplet(run, fake_do: FakeDigitalOcean, droplet_args,
                                             remote_dir: Path, tmp_path: Path):
    users = users_file(tmp_path, 78, instructors=2)
    result = run(*droplet_args, "--users", str(users), "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("create-node: warning: ")
    assert "80 people" in warnings[0] and "holds about 73" in warnings[0]
    assert "--force: creating this size anyway" in warnings[0]
    (create,) = [c.body for c in fake_do.calls("POST", "/v2/droplets")]
    assert create["size"] == "s-4vcpu-8gb"
    assert (remote_dir / "etc" / "jupyterhub" / "users.txt").read_text() == users.read_text()


def test_fitting_size_proceeds_silently(run, fake_do: FakeDigitalOcean, droplet_args,
                                        tmp_path: Path):
    users = users_file(tmp_path, 30, instructors=2, broken=2)  # 32 counted; large holds 162
    result = run(*droplet_args, "--size", "large", "--users", str(users))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == ""
    assert "large (s-8vcpu-16gb, 16 GB RAM) holds about 162 participants" in result.stdout
    assert (f"{users}: 32 people (30 participants, 2 instructors, 2 broken lines not "
            "counted)") in result.stdout
    assert [c.body["size"] for c in fake_do.calls("POST", "/v2/droplets")] == ["s-8vcpu-16gb"]


def test_plan_shows_the_capacity_without_users(run, fake_do: FakeDigitalOcean):
    result = run("--hostname", "lab", "--domain", DOMAIN, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "medium (s-4vcpu-8gb, 8 GB RAM) holds about 73 participants" in result.stdout
    assert "would create droplet lab" in result.stdout


def test_size_of_unknown_memory_is_not_checked(run, fake_do: FakeDigitalOcean,
                                               tmp_path: Path):
    users = users_file(tmp_path, 99)
    result = run("--hostname", "lab", "--domain", DOMAIN, "--size", "c-8", "--dry-run",
                 "--users", str(users))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == ""
    assert "capacity unknown for this size (c-8)" in result.stdout


def test_existing_droplet_is_not_judged_by_size(run, fake_do: FakeDigitalOcean, droplet_args,
                                               tmp_path: Path):
    assert run(*droplet_args, "--size", "large").returncode == 0
    users = users_file(tmp_path, 78, instructors=2)  # too many for the default size
    # Re-run with the default size: the droplet exists (it is large), nothing is resized.
    result = run(*droplet_args, "--users", str(users), "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "droplet lab exists, so its size is kept as it is" in result.stdout
    assert len(fake_do.calls("POST", "/v2/droplets")) == 1
