"""DigitalOcean tokens from the environment, and the certbot credentials file made of one.

The node asks Let's Encrypt for a certificate covering HOST and *.HOST, which
only a DNS-01 challenge can get: certbot's dns-digitalocean plugin on the node
needs a token that may change the domain's records. A token limited to DNS
(DIGITALOCEAN_DNS_TOKEN) is the one to give it; the account's full token works
but then lives on the node, where a participant who escapes their walls could
use it against the whole account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from provision.errors import REDACT, ProvisionError

API_TOKEN = "DIGITALOCEAN_TOKEN"
DNS_TOKEN = "DIGITALOCEAN_DNS_TOKEN"
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # one word of printable ASCII


def _token(env: Mapping[str, str], name: str) -> str:
    token = env.get(name, "").strip()
    if token and not _TOKEN.match(token):
        # A line break would add lines to the credentials file on the node.
        raise ProvisionError(f"{name} contains spaces, line breaks or other characters "
                             "a DigitalOcean token does not have")
    REDACT.add(token)
    return token


def token_from_env(env: Mapping[str, str]) -> str:
    token = _token(env, API_TOKEN)
    if not token:
        raise ProvisionError(
            f"{API_TOKEN} is not set: create a token with read and write scope "
            f"(DigitalOcean control panel → API) and export {API_TOKEN}=..."
        )
    return token


@dataclass(frozen=True)
class DnsCredentials:
    """certbot-dns-digitalocean's credentials file, to be written at `path` on the node."""

    path: str
    source: str  # the environment variable the token came from
    token: str = field(repr=False)

    @property
    def content(self) -> bytes:
        return f"dns_digitalocean_token = {self.token}\n".encode()

    @property
    def dns_only(self) -> bool:
        return self.source == DNS_TOKEN


def dns_credentials(env: Mapping[str, str], api_token: str, path: str) -> DnsCredentials:
    token = _token(env, DNS_TOKEN)
    if token:
        return DnsCredentials(path, DNS_TOKEN, token)
    return DnsCredentials(path, API_TOKEN, api_token)


def dns_token_advice() -> str:
    return (f"{DNS_TOKEN} is not set, so the node gets {API_TOKEN} for certbot's DNS "
            f"challenge; a token with only the domain scopes is safer there (Readme: On a "
            "cloud server)")
