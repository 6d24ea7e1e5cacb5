"""A private Let's Encrypt on loopback: Debian's pebble with a CA made for the run.

pebble ships no TLS certificate for its own API, so the run makes a CA and a certificate
for localhost/127.0.0.1 with `cryptography`; certbot trusts it through REQUESTS_CA_BUNDLE.
HTTP-01 challenges go to `http_port` on 127.0.0.1, where nginx serves the webroot.
DNS-01 (wildcard certificates) goes through Debian's pebble-challtestsrv, a DNS server
with an HTTP API: `dns_hook()` writes the certbot --manual-auth-hook that sets the TXT
record there, as certbot-dns-digitalocean does at DigitalOcean. Names resolve to
127.0.0.1 through it (its default answer).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ACME_PORT, MANAGEMENT_PORT = 14000, 15000
DNS_PORT, DNS_MANAGEMENT_PORT = 8053, 8055


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for pebble's own listener."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("workshop test ACME CA"))
          .issuer_name(_name("workshop test ACME CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem_key(key))
    return paths


class Pebble:
    def __init__(self, directory: Path, http_port: int = 80) -> None:
        self.directory = directory
        self.ca, cert, key = make_test_ca(directory)
        self.config = directory / "pebble.json"
        self.config.write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{ACME_PORT}",
            "managementListenAddress": f"127.0.0.1:{MANAGEMENT_PORT}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": http_port, "tlsPort": 443, "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}))
        self.process: subprocess.Popen[bytes] | None = None
        self.dns: subprocess.Popen[bytes] | None = None
        self.log = directory / "pebble.log"

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{ACME_PORT}/dir"

    def start(self) -> None:
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        with (self.directory / "challtestsrv.log").open("wb") as log:
            # Every listener on 127.0.0.1 explicitly: its defaults are every interface.
            self.dns = subprocess.Popen(
                ["pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
                 "-dns01", f"127.0.0.1:{DNS_PORT}",
                 "-management", f"127.0.0.1:{DNS_MANAGEMENT_PORT}"],
                stdout=log, stderr=subprocess.STDOUT)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["pebble", "-config", str(self.config), "-dnsserver", f"127.0.0.1:{DNS_PORT}"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.directory_url, verify=str(self.ca), timeout=2)
                requests.post(f"http://127.0.0.1:{DNS_MANAGEMENT_PORT}/clear-txt", timeout=2,
                              json={"host": "_acme-challenge.example.test."})
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"pebble did not start: {self.log.read_text()}")

    def issuing_root(self) -> Path:
        """The root that signed the certificates pebble issued (new at every start)."""
        r = requests.get(f"https://127.0.0.1:{MANAGEMENT_PORT}/roots/0", verify=str(self.ca),
                         timeout=5)
        r.raise_for_status()
        path = self.directory / "issuing-root.pem"
        path.write_text(r.text)
        return path

    def dns_hook(self) -> Path:
        """certbot's --manual-auth-hook for DNS-01 against this run's challtestsrv."""
        hook = self.directory / "dns-hook.sh"
        hook.write_text(
            "#!/bin/sh\n# certbot --manual-auth-hook: the TXT record for DNS-01.\n"
            "set -eu\n"
            f"curl -fsS http://127.0.0.1:{DNS_MANAGEMENT_PORT}/set-txt -d "
            '"{\\"host\\": \\"_acme-challenge.$CERTBOT_DOMAIN.\\", '
            '\\"value\\": \\"$CERTBOT_VALIDATION\\"}"\n')
        hook.chmod(0o755)
        return hook

    def stop(self) -> None:
        for process in (self.process, self.dns):
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
