"""The final check: does the node answer /hub/health over https with a valid certificate?

The request goes to the address we just set up (the droplet's IP, or the
--ssh host) while TLS verification and the Host header use the public name,
like `curl --resolve`. That proves the node serves a certificate valid for
the name, without depending on the laptop's DNS cache having caught up with
a record created a minute ago.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl

from provision.backoff import Backoff, sleep
from provision.errors import ProvisionError, one_line
from provision.progress import Progress


class _PinnedAddressHTTPS(http.client.HTTPSConnection):
    def __init__(self, name: str, address: str, port: int, context: ssl.SSLContext,
                 timeout: float) -> None:
        super().__init__(name, port, context=context, timeout=timeout)
        self._address = address
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


class _PinnedAddressHTTP(http.client.HTTPConnection):
    def __init__(self, name: str, address: str, port: int, timeout: float) -> None:
        super().__init__(name, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def tls_context() -> ssl.SSLContext:
    """Verify against the CA bundle the user's tools use, else certifi or the system store."""
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if not cafile:
        try:
            import certifi  # installed with pydo (through requests)

            cafile = certifi.where()
        except ImportError:
            cafile = None
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def health_url(name: str, tls: bool, port: int | None) -> str:
    scheme = "https" if tls else "http"
    default = 443 if tls else 80
    netloc = name if port in (None, default) else f"{name}:{port}"
    return f"{scheme}://{netloc}/hub/health"


def probe(name: str, address: str, tls: bool, port: int, timeout: float = 10.0) -> int:
    """One GET of /hub/health; returns the HTTP status or raises OSError/SSLError."""
    conn: http.client.HTTPConnection
    if tls:
        conn = _PinnedAddressHTTPS(name, address, port, tls_context(), timeout)
    else:
        conn = _PinnedAddressHTTP(name, address, port, timeout)
    try:
        conn.request("GET", "/hub/health", headers={"User-Agent": "create-node.py"})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_healthy(name: str, address: str, tls: bool, port: int | None, backoff: Backoff,
                 progress: Progress) -> str:
    url = health_url(name, tls, port)
    port = port or (443 if tls else 80)
    delays = backoff.delays()
    last = "no answer"
    while True:
        try:
            status = probe(name, address, tls, port)
            if status == 200:
                progress.say(f"{url} answered 200")
                return url
            last = f"HTTP {status}"
        except ssl.SSLCertVerificationError as exc:
            last = f"certificate not valid for {name}: {one_line(exc.verify_message or str(exc))}"
        except (OSError, http.client.HTTPException) as exc:
            last = one_line(str(exc)) or type(exc).__name__
        delay = next(delays, None)
        if delay is None:
            raise ProvisionError(
                f"{url} (via {address}) did not answer 200 within {backoff.timeout:.0f}s: {last}"
            )
        sleep(delay)
