"""Who listens on a loopback port: the check that a participant's route leads to their
own server.

Servers listen on 127.0.0.1 of a network the whole class shares, and any participant's
kernel may bind any free port above 1024. A port handed to a starting server is free
when chosen, but the server binds it a second or more later: a participant who grabs it
first makes that server fail to bind, and the hub's readiness check, which only asks
whether something answers HTTP there, would route the other participant's address (and
an instructor stepping in, with their cookies for that origin) to the squatter's
process. So once a new server answers, the hub looks up the socket listening on its
port in /proc/net/tcp{,6}: it must belong to the participant's own uid. Linux lets two
sockets share a listening port (SO_REUSEPORT) only under the same uid, so a squatter
cannot hide behind the real server either.
"""

from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"  # the TCP state in /proc/net/tcp


def listener_uids(port: int, proc: str | os.PathLike[str] = "/proc") -> set[int]:
    """The uids owning a TCP socket listening on `port` (any address, IPv4 or IPv6)."""
    uids: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (Path(proc) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue  # no IPv6 in this kernel
        for line in lines:
            fields = line.split()
            # sl, local_address (hex ip:port), rem_address, st, queues, tr, retrnsmt, uid
            if len(fields) < 8 or fields[3] != LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                uids.add(int(fields[7]))
    return uids
