"""The droplet's DigitalOcean Cloud Firewall: SSH, HTTP and HTTPS in, everything out.

Participants are untrusted, and whatever they start on the node (a web server in a
notebook, a forgotten database) must not be reachable from outside: the cloud
firewall drops it before it reaches the droplet, whatever runs there. Only sshd
(22) and nginx (80 for ACME and redirects, 443) are let in.

The firewall is ours by its name, workshop-<droplet name>: found by it, corrected
when its rules or droplets differ, never created twice (see Api.create).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provision.api import JSON, Api

INBOUND_TCP = ("22", "80", "443")
EVERYWHERE = ("0.0.0.0/0", "::/0")
# Every port, as the API takes it for tcp and udp; it answers "0" (as for icmp, which has
# no ports), and the control panel's "All ports" reads back the same way.
ALL_PORTS = "1-65535"
SUMMARY = "in: TCP 22, 80, 443 from anywhere; out: everything"


def desired_rules() -> tuple[list[JSON], list[JSON]]:
    anywhere = {"addresses": list(EVERYWHERE)}
    inbound = [{"protocol": "tcp", "ports": port, "sources": anywhere} for port in INBOUND_TCP]
    outbound: list[JSON] = [{"protocol": p, "ports": ALL_PORTS, "destinations": anywhere}
                            for p in ("tcp", "udp")]
    outbound.append({"protocol": "icmp", "destinations": anywhere})
    return inbound, outbound


Rule = tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...], str]


def canonical(rules: Iterable[JSON] | None, side: str) -> frozenset[Rule]:
    """Rules in a form that compares equal whenever they allow the same traffic,
    whatever order and spelling (ports "0", "all", "1-65535") the API used."""
    found = set()
    for rule in rules or []:
        protocol = str(rule.get("protocol", "")).lower()
        ports = str(rule.get("ports") or "")
        if protocol == "icmp":
            ports = ""
        elif ports in ("", "0", "all", ALL_PORTS):
            ports = "all"
        targets = tuple(sorted((kind, tuple(sorted(str(v) for v in values)))
                               for kind, values in (rule.get(side) or {}).items() if values))
        found.add((protocol, ports, targets, str(rule.get("action") or "allow")))
    return frozenset(found)


@dataclass(frozen=True)
class Firewall:
    id: str
    name: str
    droplet_ids: list[int] = field(default_factory=list)
    inbound: list[JSON] = field(default_factory=list)
    outbound: list[JSON] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    created_at: str = ""

    @classmethod
    def from_api(cls, data: JSON) -> Firewall:
        return cls(id=str(data["id"]), name=str(data.get("name", "")),
                   droplet_ids=[int(i) for i in data.get("droplet_ids") or []],
                   inbound=list(data.get("inbound_rules") or []),
                   outbound=list(data.get("outbound_rules") or []),
                   tags=list(data.get("tags") or []), created_at=str(data.get("created_at", "")))

    def rules_ok(self) -> bool:
        inbound, outbound = desired_rules()
        return (canonical(self.inbound, "sources") == canonical(inbound, "sources")
                and canonical(self.outbound, "destinations")
                == canonical(outbound, "destinations")
                and not self.tags)  # a tag would pull other droplets behind these rules

    def differences(self, droplet_id: int) -> list[str]:
        wrong = [] if self.rules_ok() else ["rules"]
        if self.droplet_ids != [droplet_id]:
            wrong.append("droplets")
        return wrong


class Firewalls:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._client = api.client

    def find(self, name: str) -> list[Firewall]:
        """The firewalls of this name, oldest first."""
        found = [Firewall.from_api(f) for f in self.api.paged(
            "listing cloud firewalls", self._client.firewalls.list, "firewalls")
            if f.get("name") == name]
        return sorted(found, key=lambda f: (f.created_at, f.id))

    def _body(self, name: str, droplet_id: int) -> JSON:
        inbound, outbound = desired_rules()
        # PUT resets what it is not given: the whole firewall, every time.
        return {"name": name, "inbound_rules": inbound, "outbound_rules": outbound,
                "droplet_ids": [droplet_id], "tags": []}

    def ensure(self, name: str, droplet_id: int) -> list[str]:
        """The firewall exists once, with our rules, on this droplet only; return what
        was done, one line each."""
        found = self.find(name)
        done = [self._delete(extra, "a second firewall") for extra in found[1:]]
        if not found:
            firewall, lost = self.api.create(
                f"creating firewall {name}", self._client.firewalls.create,
                self._body(name, droplet_id), lambda a: Firewall.from_api(a["firewall"]),
                lambda: next(iter(self.find(name)), None))
            note = f" (answered '{lost}', but it was made: using it)" if lost else ""
            done.append(f"created firewall {name} ({SUMMARY}) for droplet {droplet_id}{note}")
            found = [firewall]
            if not lost:
                return done
        firewall = found[0]
        wrong = firewall.differences(droplet_id)
        if wrong == ["droplets"] and not set(firewall.droplet_ids) - {droplet_id}:
            self.api.call(f"attaching firewall {name} to droplet {droplet_id}",
                          self._client.firewalls.assign_droplets, firewall.id,
                          {"droplet_ids": [droplet_id]})
            done.append(f"attached firewall {name} to droplet {droplet_id}")
        elif wrong:
            self.api.call(f"updating firewall {name}", self._client.firewalls.update,
                          firewall.id, self._body(name, droplet_id))
            done.append(f"corrected firewall {name} ({' and '.join(wrong)}: {SUMMARY}, "
                        f"droplet {droplet_id} only)")
        elif not done:
            done.append(f"firewall {name} in place ({SUMMARY})")
        return done

    def plan(self, name: str, droplet_id: int | None) -> str:
        found = self.find(name)
        if not found:
            return f"would create firewall {name} ({SUMMARY}) for the droplet"
        wrong = found[0].differences(droplet_id) if droplet_id is not None else []
        extra = f", and delete {len(found) - 1} more of that name" if len(found) > 1 else ""
        if wrong:
            return f"would correct firewall {name} ({' and '.join(wrong)}){extra}"
        return f"would keep firewall {name} ({SUMMARY}){extra}"

    def delete(self, name: str) -> list[str]:
        return [self._delete(firewall, "firewall") for firewall in self.find(name)]

    def _delete(self, firewall: Firewall, what: str) -> str:
        self.api.call(f"deleting firewall {firewall.name}", self._client.firewalls.delete,
                      firewall.id)
        return f"deleted {what} {firewall.name} (id {firewall.id})"
