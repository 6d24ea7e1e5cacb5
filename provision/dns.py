"""The node's DNS A records on DigitalOcean, kept pointing at the droplet.

Records are matched by their name relative to the domain ("lab", "*.lab"), read
from one listing of the domain's A records: that works the same for plain and
wildcard names, whatever the API's `name` filter makes of a "*".
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.api import JSON, Api

RECORD_TTL = 300  # short, so a recreated droplet's new address spreads quickly


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

    def a_records(self, relative: str) -> list[Record]:
        return [
            Record(int(r["id"]), str(r.get("name", "")), str(r.get("data", "")))
            for r in self.api.paged(f"listing the A records of {self.domain}",
                                    self._client.domains.list_records, "domain_records",
                                    domain_name=self.domain, type="A")
            if str(r.get("name", "")).lower() == relative
        ]

    def ensure(self, relative: str, ip: str) -> str:
        """Point the name's one A record at ip; return what was done, for the progress line."""
        fqdn = self.fqdn(relative)
        records = self.a_records(relative)
        for extra in records[1:]:
            # Two A records would send Let's Encrypt and browsers to random hosts.
            self.api.call(f"deleting a second A record of {fqdn}",
                          self._client.domains.delete_record, self.domain, extra.id)
        if not records:
            return self._create(relative, ip)
        record = records[0]
        note = f" (removed {len(records) - 1} duplicate)" if len(records) > 1 else ""
        if record.data == ip:
            return f"{fqdn} → {ip} already{note}"
        self.api.call(f"updating the A record {fqdn}", self._client.domains.patch_record,
                      self.domain, record.id, {"type": "A", "data": ip})
        return f"updated {fqdn}: {record.data} → {ip}{note}"

    def _create(self, relative: str, ip: str) -> str:
        fqdn = self.fqdn(relative)

        def made(answer: JSON) -> Record:
            r = answer["domain_record"]
            return Record(int(r["id"]), str(r["name"]), str(r["data"]))

        def find() -> Record | None:
            return next((r for r in self.a_records(relative) if r.data == ip), None)

        body = {"type": "A", "name": relative, "data": ip, "ttl": RECORD_TTL}
        _, lost = self.api.create(f"creating the A record {fqdn}",
                                  self._client.domains.create_record, body, made, find,
                                  self.domain)
        if lost:
            return f"created {fqdn} → {ip} (answered '{lost}', but the record was made: using it)"
        return f"created {fqdn} → {ip}"

    def delete(self, relative: str, ip: str) -> int:
        """Delete the name's A records that point at ip (others are not ours to remove)."""
        deleted = 0
        for record in self.a_records(relative):
            if record.data == ip:
                self.api.call(f"deleting the A record {self.fqdn(relative)}",
                              self._client.domains.delete_record, self.domain, record.id)
                deleted += 1
        return deleted
