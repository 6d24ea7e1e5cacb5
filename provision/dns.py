"""The node's DNS A records on DigitalOcean, kept pointing at the droplet.

A node answers to HOST and to every name below it: each participant's JupyterLab
is served on its own subdomain (alice.HOST, JupyterHub's subdomain_host), so one
wildcard record *.HOST covers them all. Both are kept in step with the droplet.

Records are matched by their name relative to the domain ("lab", "*.lab"), read
from one listing of the domain's A records: that works the same for plain and
wildcard names, whatever the API's `name` filter makes of a "*".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provision.api import JSON, Api

RECORD_TTL = 300  # short, so a recreated droplet's new address spreads quickly


def node_names(relative: str) -> list[str]:
    """The record names (relative to the domain) of a node: HOST and *.HOST."""
    return [relative, f"*.{relative}"]


@dataclass(frozen=True)
class Record:
    id: int
    name: str  # relative to the domain, as the API spells it
    data: str


class Dns:
    def __init__(self, api: Api, domain: str) -> None:
        self.api = api
        self.domain = domain
        self._client = api.client

    def fqdn(self, relative: str) -> str:
        return self.domain if relative == "@" else f"{relative}.{self.domain}"

    def a_records(self, names: Sequence[str]) -> dict[str, list[Record]]:
        """The A records of each name, from one listing of the domain."""
        found: dict[str, list[Record]] = {name: [] for name in names}
        for r in self.api.paged(f"listing the A records of {self.domain}",
                                self._client.domains.list_records, "domain_records",
                                domain_name=self.domain, type="A"):
            name = str(r.get("name", "")).lower()
            if name in found:
                found[name].append(Record(int(r["id"]), name, str(r.get("data", ""))))
        return found

    def ensure(self, names: Sequence[str], ip: str) -> list[str]:
        """Point each name's one A record at ip; return what was done, one line a name."""
        current = self.a_records(names)
        return [self._ensure_one(name, current[name], ip) for name in names]

    def _ensure_one(self, name: str, records: list[Record], ip: str) -> str:
        fqdn = self.fqdn(name)
        for extra in records[1:]:
            # Two A records would send Let's Encrypt and browsers to random hosts.
            self.api.call(f"deleting a second A record of {fqdn}",
                          self._client.domains.delete_record, self.domain, extra.id)
        if not records:
            return self._create(name, ip)
        record = records[0]
        note = f" (removed {len(records) - 1} duplicate)" if len(records) > 1 else ""
        if record.data == ip:
            return f"{fqdn} → {ip} already{note}"
        self.api.call(f"updating the A record {fqdn}", self._client.domains.patch_record,
                      self.domain, record.id, {"type": "A", "data": ip})
        return f"updated {fqdn}: {record.data} → {ip}{note}"

    def _create(self, name: str, ip: str) -> str:
        fqdn = self.fqdn(name)

        def made(answer: JSON) -> Record:
            r = answer["domain_record"]
            return Record(int(r["id"]), str(r["name"]), str(r["data"]))

        def find() -> Record | None:
            return next((r for r in self.a_records([name])[name] if r.data == ip), None)

        body = {"type": "A", "name": name, "data": ip, "ttl": RECORD_TTL}
        _, lost = self.api.create(f"creating the A record {fqdn}",
                                  self._client.domains.create_record, body, made, find,
                                  self.domain)
        if lost:
            return f"created {fqdn} → {ip} (answered '{lost}', but the record was made: using it)"
        return f"created {fqdn} → {ip}"

    def delete(self, names: Sequence[str], ip: str) -> list[str]:
        """Delete the names' A records that point at ip (others are not ours to remove);
        return one line per record deleted."""
        done = []
        for name, records in self.a_records(names).items():
            for record in records:
                if record.data == ip:
                    self.api.call(f"deleting the A record {self.fqdn(name)}",
                                  self._client.domains.delete_record, self.domain, record.id)
                    done.append(f"deleted the A record {self.fqdn(name)} → {ip}")
        return done
