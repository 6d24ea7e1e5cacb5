"""The fork servers' wire format: length-prefixed JSON frames over a Unix stream socket,
with descriptors passed alongside (SCM_RIGHTS).

One connection is one child. The asker sends one request frame (with its stdio
descriptors for a kernel); the child answers one frame (its pid, and a pidfd of itself:
a handle that can neither be mistaken for a recycled pid nor outlive its meaning); when
the child has ended, the fork server sends a last frame with its exit status. A frame is
at most `limit` bytes: a request is judged by its header before its body is read.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 1024  # an environment and a few paths; far more than any real request
MAX_FDS = 4


class ProtocolError(ValueError):
    """A frame that is not what the other side promised (too long, cut short, not JSON)."""


def send_frame(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None
               ) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes is over the limit")
    data = HEADER.pack(len(body)) + body
    # The descriptors travel with the first bytes; the rest follows as plain data.
    sent = socket.send_fds(sock, [data], fds) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_exactly(sock: socket.socket, size: int, fds: list[int]) -> bytes:
    chunks, got = [], 0
    while got < size:
        data, new_fds, flags, _ = socket.recv_fds(sock, size - got, MAX_FDS)
        fds.extend(new_fds)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolError("more descriptors than allowed")
        if not data:
            raise ProtocolError("connection closed mid-frame" if got else "connection closed")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, limit: int = MAX_FRAME) -> tuple[dict[str, Any], list[int]]:
    """One frame and the descriptors that came with it (the caller owns and closes them).

    Raises ProtocolError (after closing any received descriptors) on anything malformed.
    """
    fds: list[int] = []
    try:
        (size,) = HEADER.unpack(_recv_exactly(sock, HEADER.size, fds))
        if size > limit:
            raise ProtocolError(f"frame of {size} bytes announced, limit {limit}")
        body = _recv_exactly(sock, size, fds)
        try:
            message = json.loads(body)
        except ValueError as e:
            raise ProtocolError(f"not JSON: {e}") from None
        if not isinstance(message, dict):
            raise ProtocolError("a frame must hold a JSON object")
        return message, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end, as the kernel saw it at connect()."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid
