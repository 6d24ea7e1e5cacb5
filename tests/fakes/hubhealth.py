"""A stand-in for nginx in front of the hub: answers GET /hub/health over https (or http).

create-node.py's last step checks https://HOST/hub/health with certificate
verification; this server presents a certificate for HOST from the test CA,
so the check passes only when the client verifies against that CA and asks
for the right name (SNI and Host header).
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.tls import TestCA


@dataclass
class HubHealth:
    ca: TestCA
    workdir: Path
    names: list[str]
    status: int = 200
    tls: bool = True  # False: plain http, as with setup-node.sh --no-tls
    listen: str = "127.0.0.1"  # always a loopback address
    hosts_seen: list[str] = field(default_factory=list)

    def start(self) -> HubHealth:
        cert, key = self.ca.issue(self.workdir, self.names, "hub-health")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.hosts_seen.append(self.headers.get("Host", ""))
                status = fake.status if self.path == "/hub/health" else 404
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        assert self.listen.startswith("127."), "tests listen on loopback only"
        self._server = ThreadingHTTPServer((self.listen, 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
