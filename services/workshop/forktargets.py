"""What a forked child runs once it is the participant: their server, or a kernel.

Both are what the classic spawner execs (`jupyterhub-singleuser`, `python -m
ipykernel_launcher -f <file>`), called in-process instead, with the modules already
imported by the fork server. A few modules keep per-process state from their import
that must not be shared between participants, or was computed for the fork server
rather than for them; `after_fork` puts those right:

- numpy's global random generator was seeded once, in the fork server: every kernel
  would draw the same "random" numbers. It is reseeded from the OS.
- matplotlib found its configuration and cache directories, and read MPLBACKEND, for
  the fork server: forgotten again, so they follow the participant's HOME and
  environment like in a freshly started kernel (their matplotlibrc included).

What stays shared, and is documented: str hashing's random salt (PYTHONHASHSEED) is the
fork server's, the same for every participant's process; a module already imported
cannot be replaced by the participant's own copy in a running kernel (the classic
kernel, `python3-classic`, can).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

SERVER_SCRIPT = "jupyterhub-singleuser"
SERVICES = str(Path(__file__).resolve().parents[1])  # /srv/services in the container


def _reseed_numpy() -> None:
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # fresh entropy from the OS, as at a fresh import


def _refresh_matplotlib() -> None:
    mpl = sys.modules.get("matplotlib")
    if mpl is None:
        return
    for cached in ("get_configdir", "get_cachedir"):
        getattr(getattr(mpl, cached, None), "cache_clear", lambda: None)()
    try:
        fname = mpl.matplotlib_fname()
        default = str(Path(mpl.get_data_path()) / "matplotlibrc")
        if fname != default:  # the participant's own matplotlibrc: as a fresh import
            mpl.rcParams.update(mpl.rc_params_from_file(fname, use_default_template=False))
    except Exception as e:  # a broken matplotlibrc must not keep the kernel from starting
        print(f"matplotlibrc not applied: {e}", file=sys.stderr)
    if os.environ.get("MPLBACKEND"):
        mpl.rcParams["backend"] = os.environ["MPLBACKEND"]


def after_fork() -> None:
    _reseed_numpy()
    _refresh_matplotlib()


def _own_sys_path(first: str | None) -> None:
    """sys.path as the classic command would have it: the fork server's own code
    directory is not the participant's business."""
    sys.path[:] = [p for p in sys.path if p not in ("", SERVICES)]
    if first:
        sys.path.insert(0, first)


def run_server(argv: list[str]) -> int:
    """The participant's JupyterLab, as `jupyterhub-singleuser *argv` would run it."""
    from jupyterhub.singleuser import main

    _own_sys_path(None)
    after_fork()
    sys.argv = [SERVER_SCRIPT, *argv]
    result = main()
    return result if isinstance(result, int) else 0


def run_kernel(args: list[str]) -> int:
    """An IPython kernel, as `python -m ipykernel_launcher *args` would run it."""
    import ipykernel_launcher
    from ipykernel import kernelapp

    # `python -m` puts the working directory first; ipykernel_launcher takes it out while
    # it imports and InteractiveShellApp puts it back, so the notebook's folder imports.
    _own_sys_path(None)
    after_fork()
    sys.argv = [ipykernel_launcher.__file__, *args]
    kernelapp.launch_new_instance()
    return 0


TARGETS: dict[str, Callable[[list[str]], int]] = {"server": run_server, "kernel": run_kernel}


def title(role: str, argv: list[str]) -> tuple[list[str], str]:
    """The command line and process name a child shows: the classic spawner's."""
    if role == "server":
        return [SERVER_SCRIPT, *argv], SERVER_SCRIPT[:15]
    return [sys.executable, "-m", "ipykernel_launcher", *argv], "python"
