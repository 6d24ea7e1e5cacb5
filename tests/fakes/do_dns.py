"""The fake DigitalOcean API's domains and domain records (see tests/fakes/digitalocean.py).

Wire format as in DigitalOcean's OpenAPI spec: record names are relative to the
domain ("lab", "*.lab", "@" for the apex), while the `name` filter of the list
takes the fully qualified name ("lab.example.org", "*.lab.example.org") and
matches it exactly, wildcards included.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.jsonapi import JSON, Answer, error

# A record name relative to its domain: "@", "lab", "eu.lab", or a wildcard "*.lab" / "*".
_RECORD_NAME = re.compile(r"^(?:@|\*|(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
                          r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*)$")


class DnsRoutes:
    """Mixed into FakeDigitalOcean, which provides the lock, ids and pagination."""

    domains: dict[str, list[JSON]]
    _lock: threading.RLock
    _ids: itertools.count[int]
    _page: Callable[..., Answer]

    # -- test controls ------------------------------------------------------------

    def add_domain(self, name: str) -> None:
        with self._lock:
            self.domains.setdefault(name, [
                self._record("NS", "@", "ns1.digitalocean.com", 1800),
                self._record("NS", "@", "ns2.digitalocean.com", 1800),
            ])

    def add_record(self, domain: str, rtype: str, name: str, data: str) -> JSON:
        with self._lock:
            record = self._record(rtype, name, data, 1800)
            self.domains[domain].append(record)
            return record

    def a_records(self, domain: str, name: str) -> list[JSON]:
        """The A records whose relative name is `name` ("lab", "*.lab")."""
        with self._lock:
            return [r for r in self.domains[domain] if r["type"] == "A" and r["name"] == name]

    # -- model --------------------------------------------------------------------

    def _record(self, rtype: str, name: str, data: str, ttl: int) -> JSON:
        return {"id": next(self._ids), "type": rtype, "name": name, "data": data,
                "priority": None, "port": None, "ttl": ttl, "weight": None, "flags": None,
                "tag": None}

    def _find_record(self, name: str, record_id: str) -> JSON | None:
        return next((r for r in self.domains.get(name, []) if r["id"] == int(record_id)), None)

    # -- routes -------------------------------------------------------------------

    def r_domains(self, query: dict[str, str], body: Any) -> Answer:
        items = [{"name": n, "ttl": 1800, "zone_file": ""} for n in sorted(self.domains)]
        return self._page("/v2/domains", query, "domains", items)

    def r_domain(self, query: dict[str, str], body: Any, name: str) -> Answer:
        if name not in self.domains:
            return error(404)
        return 200, {"domain": {"name": name, "ttl": 1800, "zone_file": f"$ORIGIN {name}.\n"}}

    def r_records(self, query: dict[str, str], body: Any, name: str) -> Answer:
        if name not in self.domains:
            return self.r_domain(query, body, name)
        items = self.domains[name]
        if "name" in query:  # the fully qualified name, as the API documents
            items = [r for r in items
                     if (name if r["name"] == "@" else f"{r['name']}.{name}") == query["name"]]
        if "type" in query:
            items = [r for r in items if r["type"] == query["type"]]
        return self._page(f"/v2/domains/{name}/records", query, "domain_records", items)

    def r_create_record(self, query: dict[str, str], body: Any, name: str) -> Answer:
        if name not in self.domains:
            return self.r_domain(query, body, name)
        if not isinstance(body, dict) or not all(body.get(k) for k in ("type", "name", "data")):
            return error(422, "type, name and data are required")
        if body["name"].endswith("." + name):
            return error(422, "Name is not valid: give the name relative to the domain")
        if not _RECORD_NAME.match(body["name"]) or len(f"{body['name']}.{name}") > 253:
            return error(422, "Name is not valid")
        if body["type"] == "A" and not _is_ipv4(body["data"]):
            return error(422, "Data needs to be a valid IPv4 address")
        record = self._record(body["type"], body["name"], body["data"], body.get("ttl", 1800))
        self.domains[name].append(record)
        return 201, {"domain_record": record}

    def r_update_record(self, query: dict[str, str], body: Any, name: str,
                        record_id: str) -> Answer:
        record = self._find_record(name, record_id)
        if record is None:
            return error(404)
        if not isinstance(body, dict) or body.get("type", record["type"]) != record["type"]:
            return error(422, "type cannot be changed")
        record.update({k: v for k, v in body.items() if k in ("name", "data", "ttl")})
        return 200, {"domain_record": record}

    def r_delete_record(self, query: dict[str, str], body: Any, name: str,
                        record_id: str) -> Answer:
        record = self._find_record(name, record_id)
        if record is None:
            return error(404)
        self.domains[name].remove(record)
        return 204, None


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


DNS_ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    (r"/v2/domains", "GET", DnsRoutes.r_domains),
    (r"/v2/domains/([^/]+)", "GET", DnsRoutes.r_domain),
    (r"/v2/domains/([^/]+)/records", "GET", DnsRoutes.r_records),
    (r"/v2/domains/([^/]+)/records", "POST", DnsRoutes.r_create_record),
    (r"/v2/domains/([^/]+)/records/(\d+)", "PATCH", DnsRoutes.r_update_record),
    (r"/v2/domains/([^/]+)/records/(\d+)", "PUT", DnsRoutes.r_update_record),
    (r"/v2/domains/([^/]+)/records/(\d+)", "DELETE", DnsRoutes.r_delete_record),
]
