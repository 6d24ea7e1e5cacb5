"""The fake DigitalOcean API's cloud firewalls (see tests/fakes/digitalocean.py).

Wire format as in DigitalOcean's OpenAPI spec (specification/resources/firewalls):
list (paginated), create (202 {"firewall": ...}), get, update (PUT, a full
representation: what is left out is reset), delete (204), and adding droplets
(POST /v2/firewalls/{id}/droplets, 204). Invalid bodies are answered 400, as the
spec lists (pydo hands those back as a dict instead of raising). Rules come back the
way the real API spells them: "ports" is "0" for every port of tcp/udp and always "0"
for icmp; only the target kinds given are returned. A deleted droplet leaves every
firewall it was in.
"""

from __future__ import annotations

import datetime
import itertools
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.fakes.jsonapi import JSON, Answer, error

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]+$")
_TARGETS = ("addresses", "droplet_ids", "load_balancer_uids", "kubernetes_ids", "tags")
_UUID = r"[0-9a-f-]{36}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ports(protocol: str, ports: Any) -> str | None:
    """The ports as the API answers them, or None when the API would refuse them."""
    if protocol == "icmp":
        return "0"
    text = str(ports or "")
    if text in ("all", "1-65535"):
        return "0"
    bounds = text.split("-")
    if len(bounds) > 2 or not all(b.isdigit() and 0 < int(b) < 65536 for b in bounds):
        return None  # "You must specify a positive value for ports" covers "0" and ""
    return text


class FirewallRoutes:
    """Mixed into FakeDigitalOcean, which provides the lock, droplets and pagination."""

    firewalls: dict[str, JSON]
    droplets: dict[int, JSON]
    _lock: threading.RLock
    _ids: itertools.count[int]
    _page: Callable[..., Answer]

    # -- test controls ------------------------------------------------------------

    def add_firewall(self, name: str, droplet_ids: list[int], inbound: list[JSON],
                     outbound: list[JSON]) -> JSON:
        with self._lock:
            status, answer = self._save(None, {"name": name, "droplet_ids": droplet_ids,
                                               "inbound_rules": inbound,
                                               "outbound_rules": outbound})
            assert status == 202 and answer is not None, answer
            return answer["firewall"]

    def firewalls_named(self, name: str) -> list[JSON]:
        with self._lock:
            return [f for f in self.firewalls.values() if f["name"] == name]

    def leave_firewalls(self, droplet_id: int) -> None:
        for firewall in self.firewalls.values():
            if droplet_id in firewall["droplet_ids"]:
                firewall["droplet_ids"].remove(droplet_id)

    # -- model --------------------------------------------------------------------

    def _rules(self, rules: Any, side: str) -> list[JSON] | str:
        """The rules as stored and answered, or why the API would refuse them."""
        out = []
        for rule in rules or []:
            if not isinstance(rule, dict) or rule.get("protocol") not in ("tcp", "udp", "icmp"):
                return "protocol must be one of tcp, udp or icmp"
            ports = _ports(rule["protocol"], rule.get("ports"))
            if ports is None:
                return "You must specify a positive value for ports."
            target = rule.get(side)
            if not isinstance(target, dict) or not any(target.get(k) for k in _TARGETS):
                return f"{side} must name at least one address, droplet, tag or load balancer"
            kept = {k: list(target[k]) for k in _TARGETS if target.get(k)}
            out.append({"protocol": rule["protocol"], "ports": ports, side: kept})
        return out

    def _save(self, firewall_id: str | None, body: Any) -> Answer:
        if not isinstance(body, dict) or not _NAME.match(str(body.get("name") or "")):
            return error(400, "name must begin with a letter or digit, then letters, digits, "
                              "'.' or '-'")
        inbound = self._rules(body.get("inbound_rules"), "sources")
        outbound = self._rules(body.get("outbound_rules"), "destinations")
        for rules in (inbound, outbound):
            if isinstance(rules, str):
                return error(400, rules)
        if not inbound and not outbound:
            return error(400, "a firewall needs at least one inbound or outbound rule")
        droplet_ids = list(dict.fromkeys(int(i) for i in body.get("droplet_ids") or []))
        missing = [i for i in droplet_ids if i not in self.droplets]
        if missing:
            return error(400, f"droplet {missing[0]} does not exist")
        old = self.firewalls.get(firewall_id or "")
        firewall = {
            "id": firewall_id or str(uuid.uuid4()), "name": body["name"], "status": "waiting",
            "inbound_rules": inbound, "outbound_rules": outbound,
            "created_at": old["created_at"] if old else _now(), "droplet_ids": droplet_ids,
            "tags": list(body.get("tags") or []),
            "pending_changes": [{"droplet_id": i, "removing": False, "status": "waiting"}
                                for i in droplet_ids],
        }
        self.firewalls[firewall["id"]] = firewall
        return (200 if old else 202), {"firewall": firewall}

    # -- routes -------------------------------------------------------------------

    def r_firewalls(self, query: dict[str, str], body: Any) -> Answer:
        items = sorted(self.firewalls.values(), key=lambda f: (f["created_at"], f["id"]))
        return self._page("/v2/firewalls", query, "firewalls", items)

    def r_create_firewall(self, query: dict[str, str], body: Any) -> Answer:
        return self._save(None, body)

    def r_firewall(self, query: dict[str, str], body: Any, firewall_id: str) -> Answer:
        if firewall_id not in self.firewalls:
            return error(404)
        return 200, {"firewall": self.firewalls[firewall_id]}

    def r_update_firewall(self, query: dict[str, str], body: Any, firewall_id: str) -> Answer:
        if firewall_id not in self.firewalls:
            return error(404)
        return self._save(firewall_id, body)

    def r_delete_firewall(self, query: dict[str, str], body: Any, firewall_id: str) -> Answer:
        if self.firewalls.pop(firewall_id, None) is None:
            return error(404)
        return 204, None

    def _droplet_ids(self, firewall_id: str, body: Any) -> tuple[JSON | None, list[int], Answer]:
        firewall = self.firewalls.get(firewall_id)
        if firewall is None:
            return None, [], error(404)
        ids = body.get("droplet_ids") if isinstance(body, dict) else None
        if not ids or not all(isinstance(i, int) for i in ids):
            return None, [], error(400, "droplet_ids must be a list of droplet ids")
        if any(i not in self.droplets for i in ids):
            return None, [], error(404)
        return firewall, ids, (204, None)

    def r_add_droplets(self, query: dict[str, str], body: Any, firewall_id: str) -> Answer:
        firewall, ids, answer = self._droplet_ids(firewall_id, body)
        if firewall is not None:
            firewall["droplet_ids"] += [i for i in ids if i not in firewall["droplet_ids"]]
        return answer

    def r_remove_droplets(self, query: dict[str, str], body: Any, firewall_id: str) -> Answer:
        firewall, ids, answer = self._droplet_ids(firewall_id, body)
        if firewall is not None:
            firewall["droplet_ids"] = [i for i in firewall["droplet_ids"] if i not in ids]
        return answer


FIREWALL_ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    (r"/v2/firewalls", "GET", FirewallRoutes.r_firewalls),
    (r"/v2/firewalls", "POST", FirewallRoutes.r_create_firewall),
    (rf"/v2/firewalls/({_UUID})", "GET", FirewallRoutes.r_firewall),
    (rf"/v2/firewalls/({_UUID})", "PUT", FirewallRoutes.r_update_firewall),
    (rf"/v2/firewalls/({_UUID})", "DELETE", FirewallRoutes.r_delete_firewall),
    (rf"/v2/firewalls/({_UUID})/droplets", "POST", FirewallRoutes.r_add_droplets),
    (rf"/v2/firewalls/({_UUID})/droplets", "DELETE", FirewallRoutes.r_remove_droplets),
]
