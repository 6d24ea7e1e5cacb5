"""A local stand-in for the DigitalOcean API v2, for what create-node.py uses.

Speaks the wire format of the OpenAPI spec (github.com/digitalocean/openapi):
account keys, sizes, droplets (list with tag_name/name filters, create, get,
delete), actions (in-progress for a few polls, then completed), DO's error
bodies and pagination links (links.pages.next). Domains and records live in
tests/fakes/do_dns.py, cloud firewalls in tests/fakes/do_firewalls.py. The
https server, the token check and the faults a test can ask for (429/5xx for
the next N requests of a route, optionally after doing the work, like a create
whose answer was lost; Retry-After; slowness) live in tests/fakes/jsonapi.py.
Droplets get 127.0.0.1 as public IPv4 by default, so SSH reaches the test's
own sshd.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.fakes.do_dns import DNS_ROUTES, DnsRoutes
from tests.fakes.do_firewalls import FIREWALL_ROUTES, FirewallRoutes
from tests.fakes.jsonapi import JSON, Answer, FakeJsonApi, error
from tests.fakes.tls import TestCA

# slug: (vCPUs, memory MB, disk GB, US$ a month, description), in the API's order (by price)
SIZES = {
    "s-1vcpu-1gb": (1, 1024, 25, 6.0, "Basic"),
    "s-2vcpu-4gb": (2, 4096, 80, 24.0, "Basic"),
    "s-4vcpu-8gb": (4, 8192, 160, 48.0, "Basic"),
    "s-8vcpu-16gb": (8, 16384, 320, 96.0, "Basic"),
    "c-8": (8, 16384, 100, 168.0, "CPU-Optimized"),
    "g-8vcpu-32gb": (8, 32768, 100, 252.0, "General Purpose"),
    "g-16vcpu-64gb": (16, 65536, 200, 504.0, "General Purpose"),
}
IMAGES = {"ubuntu-24-04-x64": "24.04 (LTS) x64", "ubuntu-22-04-x64": "22.04 (LTS) x64",
          "debian-12-x64": "12 x64"}
REGIONS = {"fra1": "Frankfurt 1", "ams3": "Amsterdam 3", "nyc3": "New York 3"}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def md5_fingerprint(public_line: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_line.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


@dataclass
class _Action:
    id: int
    droplet_id: int
    status: str = "in-progress"


class FakeDigitalOcean(DnsRoutes, FirewallRoutes, FakeJsonApi):
    def __init__(self, ca: TestCA, workdir: Path, token: str = "fake-token-0123456789",
                 droplet_ip: str = "127.0.0.1") -> None:
        super().__init__(ca, workdir, token)
        self.droplet_ip = droplet_ip
        self.action_polls = 2  # answers "in-progress" this many times, then "completed"
        self.max_per_page = 200
        self.on_create: Callable[[JSON, JSON], None] | None = None  # (droplet, request)
        self.droplets: dict[int, JSON] = {}
        self.domains: dict[str, list[JSON]] = {}
        self.firewalls: dict[str, JSON] = {}
        self.ssh_keys: list[JSON] = []
        self._ids = itertools.count(3164444)
        self._actions: dict[int, _Action] = {}
        self._boot: dict[int, int] = {}  # droplet id -> polls until active
        # Where each size can be created (all regions unless a test narrows it).
        self.size_regions: dict[str, list[str]] = {slug: sorted(REGIONS) for slug in SIZES}

    # -- test controls ------------------------------------------------------------

    def add_ssh_key(self, public_line: str, name: str = "laptop") -> int:
        with self._lock:
            key_id = next(self._ids)
            self.ssh_keys.append({"id": key_id, "fingerprint": md5_fingerprint(public_line),
                                  "public_key": public_line, "name": name})
            return key_id

    def add_droplet(self, name: str, ip: str | None = None, tags: tuple[str, ...] = (),
                    size: str = "s-4vcpu-8gb") -> JSON:
        with self._lock:
            droplet = self._droplet({"name": name, "size": size, "region": "fra1",
                                     "image": "ubuntu-24-04-x64", "tags": list(tags)})
            self._activate(droplet, ip or self.droplet_ip)
            return droplet

    def remove_droplet(self, droplet_id: int) -> None:
        """As if someone deleted the droplet in the control panel."""
        with self._lock:
            del self.droplets[droplet_id]
            self.leave_firewalls(droplet_id)

    # -- model --------------------------------------------------------------------

    def _size(self, slug: str) -> JSON:
        vcpus, memory, disk, monthly, description = SIZES[slug]
        return {"slug": slug, "memory": memory, "vcpus": vcpus, "disk": disk,
                "transfer": float(vcpus), "price_monthly": monthly,
                "price_hourly": round(monthly / 672, 5), "regions": self.size_regions[slug],
                "available": bool(self.size_regions[slug]), "description": description,
                "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}]}

    def _droplet(self, body: JSON) -> JSON:
        vcpus, memory, disk, _, _ = SIZES[body["size"]]
        droplet = {
            "id": next(self._ids), "name": body["name"], "memory": memory, "vcpus": vcpus,
            "disk": disk, "locked": False, "status": "new", "kernel": None,
            "created_at": _now(), "features": ["monitoring", "ipv6"], "backup_ids": [],
            "next_backup_window": None, "snapshot_ids": [],
            "image": {"id": 161000000, "name": IMAGES[body["image"]], "distribution":
                      body["image"].split("-")[0].title(), "slug": body["image"],
                      "public": True, "type": "base", "status": "available"},
            "volume_ids": [], "size": self._size(body["size"]),
            "size_slug": body["size"], "networks": {"v4": [], "v6": []},
            "region": {"name": REGIONS[body["region"]], "slug": body["region"],
                       "available": True},
            "tags": list(body.get("tags") or []),
            "vpc_uuid": "760e09ef-dc84-11e8-981e-3cfdfeaae000",
        }
        self.droplets[droplet["id"]] = droplet
        return droplet

    def _activate(self, droplet: JSON, ip: str) -> None:
        droplet["status"] = "active"
        droplet["networks"] = {
            "v4": [{"ip_address": "10.135.0.2", "netmask": "255.255.0.0",
                    "gateway": "10.135.0.1", "type": "private"},
                   {"ip_address": ip, "netmask": "255.255.240.0", "gateway": "203.0.113.1",
                    "type": "public"}],
            "v6": [{"ip_address": "2001:db8::10", "netmask": 64, "gateway": "2001:db8::1",
                    "type": "public"}],
        }

    def _tick(self, droplet_id: int) -> None:
        """Each poll of a booting droplet (or its action) brings it closer to active."""
        left = self._boot.get(droplet_id)
        if left is None:
            return
        if left <= 0:
            del self._boot[droplet_id]
            if droplet_id in self.droplets:
                self._activate(self.droplets[droplet_id], self.droplet_ip)
            for action in self._actions.values():
                if action.droplet_id == droplet_id:
                    action.status = "completed"
        else:
            self._boot[droplet_id] = left - 1

    # -- routes -------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        for pattern, verb, fn in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                return fn(self, query, body, *match.groups())
        return error(404)

    def _page(self, path: str, query: dict[str, str], key: str,
              items: list[JSON]) -> Answer:
        per_page = min(int(query.get("per_page", 20)), self.max_per_page)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        pages: JSON = {}
        last = max(1, -(-len(items) // per_page))
        base = {k: v for k, v in query.items() if k not in ("page", "per_page")}

        def link(n: int) -> str:
            return f"{self.url}{path}?{urlencode({**base, 'page': n, 'per_page': per_page})}"

        if page < last:
            pages.update(next=link(page + 1), last=link(last))
        if page > 1:
            pages.update(first=link(1), prev=link(page - 1))
        return 200, {key: chunk, "links": {"pages": pages} if pages else {},
                     "meta": {"total": len(items)}}

    def r_keys(self, query: dict[str, str], body: Any) -> Answer:
        return self._page("/v2/account/keys", query, "ssh_keys", list(self.ssh_keys))

    def r_sizes(self, query: dict[str, str], body: Any) -> Answer:
        return self._page("/v2/sizes", query, "sizes", [self._size(s) for s in SIZES])

    def r_droplets(self, query: dict[str, str], body: Any) -> Answer:
        if "name" in query and "tag_name" in query:
            # The API documents that the two filters cannot be combined.
            return error(422, "name and tag_name filters cannot be combined")
        items = sorted(self.droplets.values(), key=lambda d: d["id"])
        if "tag_name" in query:
            items = [d for d in items if query["tag_name"] in d["tags"]]
        if "name" in query:
            items = [d for d in items if d["name"].lower() == query["name"].lower()]
        return self._page("/v2/droplets", query, "droplets", items)

    def r_create(self, query: dict[str, str], body: Any) -> Answer:
        if not isinstance(body, dict) or "names" in body:
            return error(422, "expected one droplet")
        for required in ("name", "region", "size", "image"):
            if not body.get(required):
                return error(422, f"{required} is required")
        if body["size"] not in SIZES:
            return error(422, "You specified an invalid size for Droplet creation.")
        if body["image"] not in IMAGES:
            return error(422, "You specified an invalid image for Droplet creation.")
        if body["region"] not in REGIONS:
            return error(422, "You specified an invalid region for Droplet creation.")
        if body["region"] not in self.size_regions[body["size"]]:
            return error(422, "Size is not available in this region.")
        known = {k["id"] for k in self.ssh_keys} | {k["fingerprint"] for k in self.ssh_keys}
        if any(k not in known for k in body.get("ssh_keys") or []):
            return error(422, "One or more of the SSH keys provided are invalid.")
        if len(body.get("user_data") or "") > 64 * 1024:
            return error(422, "user_data is too long")
        droplet = self._droplet(body)
        action = _Action(next(self._ids), droplet["id"])
        self._actions[action.id] = action
        self._boot[droplet["id"]] = self.action_polls
        if self.on_create is not None:
            self.on_create(droplet, body)
        return 202, {"droplet": droplet, "links": {"actions": [
            {"id": action.id, "rel": "create", "href": f"{self.url}/v2/actions/{action.id}"}]}}

    def r_droplet(self, query: dict[str, str], body: Any, droplet_id: str) -> Answer:
        if int(droplet_id) not in self.droplets:
            return error(404)
        self._tick(int(droplet_id))
        return 200, {"droplet": self.droplets[int(droplet_id)]}

    def r_delete_droplet(self, query: dict[str, str], body: Any,
                         droplet_id: str) -> Answer:
        if self.droplets.pop(int(droplet_id), None) is None:
            return error(404)
        self.leave_firewalls(int(droplet_id))
        return 204, None

    def _action_json(self, action: _Action) -> JSON:
        done = action.status == "completed"
        return {"action": {"id": action.id, "status": action.status, "type": "create",
                           "started_at": _now(), "completed_at": _now() if done else None,
                           "resource_id": action.droplet_id, "resource_type": "droplet",
                           "region_slug": "fra1"}}

    def r_action(self, query: dict[str, str], body: Any, action_id: str,
                 droplet_id: str | None = None) -> Answer:
        action = self._actions.get(int(action_id))
        if action is None or (droplet_id is not None and action.droplet_id != int(droplet_id)):
            return error(404)
        self._tick(action.droplet_id)
        return 200, self._action_json(action)

    def r_droplet_action(self, query: dict[str, str], body: Any, droplet_id: str,
                         action_id: str) -> Answer:
        return self.r_action(query, body, action_id, droplet_id)


_ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    (r"/v2/account/keys", "GET", FakeDigitalOcean.r_keys),
    (r"/v2/sizes", "GET", FakeDigitalOcean.r_sizes),
    (r"/v2/droplets", "GET", FakeDigitalOcean.r_droplets),
    (r"/v2/droplets", "POST", FakeDigitalOcean.r_create),
    (r"/v2/droplets/(\d+)", "GET", FakeDigitalOcean.r_droplet),
    (r"/v2/droplets/(\d+)", "DELETE", FakeDigitalOcean.r_delete_droplet),
    (r"/v2/droplets/(\d+)/actions/(\d+)", "GET", FakeDigitalOcean.r_droplet_action),
    (r"/v2/actions/(\d+)", "GET", FakeDigitalOcean.r_action),
    *DNS_ROUTES,
    *FIREWALL_ROUTES,
]
