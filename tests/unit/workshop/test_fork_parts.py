"""The fork spawner's other parts: the hub's supervision of its fork servers (clean
environment, socket modes, restart after a crash), which kernels are forked, and what a
child resets after the fork."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import time
import types
from pathlib import Path

import pytest

from workshop import forktargets
from workshop.forkkernel import NAME, forkable_args
from workshop.forkserver import read_preload_list
from workshop.forksupervisor import BASE_ENV, ForkServers

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="a fork server runs as root")
PY = sys.executable


# -- which kernels are forked -----------------------------------------------------------------
@pytest.mark.parametrize(("cmd", "args"), [
    ([PY, "-m", "ipykernel_launcher", "-f", "/k.json"], ["-f", "/k.json"]),
    ([os.path.realpath(PY), "-m", "ipykernel_launcher", "-f", "k", "--x"], ["-f", "k", "--x"]),
    (["/other/python", "-m", "ipykernel_launcher", "-f", "k"], None),  # another environment
    ([PY, "-m", "some_other_kernel", "-f", "k"], None),
    (["R", "--slave", "-e", "IRkernel::main()", "--args", "k"], None),
    ([PY], None),
])
def test_only_this_interpreters_ipykernel_is_forked(cmd, args):
    assert forkable_args(cmd, PY) == args


def test_the_provisioner_is_registered_on_import():
    from jupyter_client.provisioning import KernelProvisionerFactory

    entry = KernelProvisionerFactory.provisioners[NAME]
    assert entry.load().__name__ == "ForkProvisioner"


def test_preload_lists_are_names_one_a_line(tmp_path: Path):
    path = tmp_path / "list.txt"
    path.write_text("# comment\nnumpy\n\n  pandas  # the class's\nmatplotlib.pyplot\n")
    assert read_preload_list(path) == ["numpy", "pandas", "matplotlib.pyplot"]
    assert read_preload_list(tmp_path / "missing.txt") == []  # logged, not fatal


def test_the_shipped_preload_lists_name_the_class_libraries():
    etc = Path(__file__).resolve().parents[3] / "etc" / "jupyter"
    kernel = read_preload_list(etc / "kernel-preload.txt")
    assert {"numpy", "pandas", "matplotlib.pyplot", "ipykernel.ipkernel"} <= set(kernel)
    assert "jupyterlab.labapp" in read_preload_list(etc / "server-preload.txt")


# -- after the fork ----------------------------------------------------------------------------
def test_numpy_is_reseeded_in_every_child(monkeypatch: pytest.MonkeyPatch):
    seeded = []
    fake = types.SimpleNamespace(random=types.SimpleNamespace(seed=lambda: seeded.append(1)))
    monkeypatch.setitem(sys.modules, "numpy", fake)
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    forktargets.after_fork()
    assert seeded == [1]


def test_matplotlib_forgets_the_fork_servers_directories(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path):
    cleared = []

    def cached(name: str):
        fn = lambda: None  # noqa: E731
        fn.cache_clear = lambda: cleared.append(name)  # type: ignore[attr-defined]
        return fn

    rc = tmp_path / "matplotlibrc"
    params: dict[str, str] = {}
    fake = types.SimpleNamespace(
        get_configdir=cached("config"), get_cachedir=cached("cache"),
        matplotlib_fname=lambda: str(rc), get_data_path=lambda: "/mpl-data",
        rc_params_from_file=lambda f, use_default_template: {"figure.dpi": "42"},
        rcParams=params)
    monkeypatch.setitem(sys.modules, "matplotlib", fake)
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    monkeypatch.setenv("MPLBACKEND", "agg")
    forktargets.after_fork()
    assert sorted(cleared) == ["cache", "config"]
    assert params == {"figure.dpi": "42", "backend": "agg"}  # the participant's own rc


def test_the_fork_servers_code_is_not_on_a_childs_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "path", ["", forktargets.SERVICES, "/lib/python"])
    forktargets._own_sys_path(None)
    assert sys.path == ["/lib/python"]


# -- the hub's supervision ------------------------------------------------------------------
def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if item)


@root_only
def test_fork_servers_start_clean_with_private_sockets_and_come_back_after_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "the-hubs-own-token")  # as in the hub
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "the-proxy-token")
    empty = tmp_path / "preload"
    empty.mkdir()
    for name in ("server-preload.txt", "kernel-preload.txt"):
        (empty / name).write_text("json\n")
    servers = ForkServers.default(run_dir=tmp_path / "run", preload_dir=str(empty), nice=0)
    # Host tests: the fork servers need only what the test venv has.
    servers.server.preload = servers.kernel.preload = [str(empty / "server-preload.txt")]

    async def scenario() -> None:
        servers.start()
        for process in servers.both():
            assert await process.wait_ready(60), f"{process.role} never ready"
        env = _environ(servers.server.proc.pid)  # type: ignore[union-attr]
        assert set(env) == {*BASE_ENV, "PATH"}  # nothing of the hub's
        kernel_env = _environ(servers.kernel.proc.pid)  # type: ignore[union-attr]
        assert set(kernel_env) == {*BASE_ENV, "PATH", "MPLCONFIGDIR"}
        hub_dir = servers.server.socket_path.parent
        assert stat.S_IMODE(hub_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(servers.server.socket_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(servers.kernel.socket_path.stat().st_mode) == 0o666
        first = servers.kernel.proc.pid  # type: ignore[union-attr]
        os.kill(first, signal.SIGKILL)
        started = time.monotonic()
        while not (servers.kernel.ready() and servers.kernel.proc.pid != first):  # type: ignore[union-attr]
            assert time.monotonic() - started < 30, "not restarted"
            await asyncio.sleep(0.1)
        assert servers.kernel.restarts == 1 and servers.server.restarts == 0

    try:
        asyncio.run(scenario())
    finally:
        servers.stop()
    assert not any(p.alive() for p in servers.both())


@root_only
def test_the_runtime_directory_is_the_participants_alone(tmp_path: Path):
    from workshop.accounts import SystemUser
    from workshop.forkspawner import runtime_dir

    account = SystemUser("fork-a", 59990, 59990, tmp_path / "home", created=False)
    root = tmp_path / "runtime"
    root.mkdir()
    (root / "59990").symlink_to("/etc")  # planted by nobody who could: replaced anyway
    path = Path(runtime_dir(account, root))
    assert path == root / "59990" and not path.is_symlink()
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (59990, 59990, 0o700)
    assert stat.S_IMODE(root.stat().st_mode) == 0o711
    # In the container: room for a kernel's longest socket path (107 bytes at most).
    from workshop.forksupervisor import RUN_DIR

    longest = RUN_DIR / "runtime" / "59999" / f"kernel-{'x' * 36}-ipc-99999"
    assert len(str(longest)) < 107


def test_the_hubs_sqlite_runs_in_wal_mode(tmp_path: Path):
    from sqlalchemy import create_engine, text

    from workshop.hubdb import use_wal

    use_wal()
    use_wal()  # once is enough; twice does no harm
    engine = create_engine(f"sqlite:///{tmp_path}/hub.sqlite")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
