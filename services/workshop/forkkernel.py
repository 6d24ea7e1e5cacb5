"""Kernels forked from the kernel fork server: a jupyter_client kernel provisioner.

A participant's server started by the fork spawner asks the kernel fork server
(forkserver.py, role `kernel`) for its Python kernels instead of starting `python -m
ipykernel_launcher`: ipykernel, IPython and the class's libraries (numpy, pandas,
matplotlib: etc/jupyter/kernel-preload.txt) are already imported there, so a kernel is
ready in a fraction of a second and its imports cost no memory of its own.

The server is the participant's, so nothing here is trusted by the fork server: the
kernel's child becomes the uid of whoever connected (SO_PEERCRED) and refuses a request
for anybody else. What the server may choose (the kernel's environment, arguments,
working directory, where its output goes) is what it could choose for a kernel it
started itself.

Everything else falls back to what jupyter_client does anyway (`LocalProvisioner`): a
kernel spec that is not this interpreter's ipykernel (another language, another
environment, `python3-classic`), no fork server configured, or one that does not answer.
The fork spawner selects this provisioner through JUPYTER_DEFAULT_PROVISIONER_NAME;
importing this module registers it (the server fork server imports it before forking).
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib.metadata import EntryPoint
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import KernelProvisionerFactory, LocalProvisioner

from .forkclient import ForkRefused, fork_child

NAME = "workshop-fork"
SOCKET_ENV = "WORKSHOP_KERNEL_FORK_SOCKET"
LAUNCHER = ("-m", "ipykernel_launcher")


def forkable_args(cmd: list[str], python: str = sys.executable) -> list[str] | None:
    """The arguments after `python -m ipykernel_launcher` when `cmd` runs this
    interpreter's ipykernel (what the fork server has loaded), else None."""
    if len(cmd) < 3 or tuple(cmd[1:3]) != LAUNCHER:
        return None
    if os.path.realpath(cmd[0]) != os.path.realpath(python):
        return None
    return list(cmd[3:])


def _fileno(stream: Any, default: int) -> int:
    try:
        return stream.fileno() if stream is not None else default
    except (AttributeError, OSError, ValueError):
        return default


class ForkProvisioner(LocalProvisioner):
    """LocalProvisioner, with the kernel process forked instead of executed."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        socket_path = os.environ.get(SOCKET_ENV)
        args = forkable_args(cmd)
        if socket_path and args is not None:
            cwd = str(kwargs.get("cwd") or os.getcwd())
            request = {"uid": os.getuid(), "argv": args, "cwd": cwd,
                       "env": dict(kwargs.get("env") or os.environ)}
            fds = [_fileno(kwargs.get("stdout"), 1), _fileno(kwargs.get("stderr"), 2)]
            try:
                process = await asyncio.to_thread(fork_child, socket_path, request, fds)
            except ForkRefused as e:
                self.log.warning("no forked kernel (%s): starting it the classic way", e)
            else:
                self.process = process  # type: ignore[assignment]  # Popen-like
                self.pid = self.pgid = process.pid  # its own session: pgid == pid
                self.cwd = cwd
                return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)


def register() -> None:
    """Make the provisioner known to jupyter_client without a package entry point."""
    KernelProvisionerFactory.provisioners.setdefault(
        NAME, EntryPoint(NAME, f"{__name__}:ForkProvisioner", KernelProvisionerFactory.GROUP_NAME))


register()
