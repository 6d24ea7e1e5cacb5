"""A local stand-in for the DigitalOcean API v2, for what create-node.py uses.

Speaks the wire format of the OpenAPI spec (github.com/digitalocean/openapi):
account keys, droplets (list with tag_name/name filters, create, get, delete),
actions (in-progress for a few polls, then completed), domains and domain
records, DO's error bodies and pagination links. It checks the bearer token,
and a test can make it answer 429/5xx for the next N requests of a route
(optionally after doing the work, like a create whose answer was lost), or be
slow. Served over https with a test CA because pydo will not send a token
over http. Droplets get 127.0.0.1 as public IPv4 by default, so SSH reaches
the test's own sshd.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from tests.fakes.tls import TestCA

JSON = dict[str, Any]
SIZES = {"s-1vcpu-1gb": (1, 1024), "s-2vcpu-4gb": (2, 4096), "s-4vcpu-8gb": (4, 8192),
         "s-8vcpu-16gb": (8, 16384), "c-8": (8, 16384)}
IMAGES = {"ubuntu-24-04-x64": "24.04 (LTS) x64", "ubuntu-22-04-x64": "22.04 (LTS) x64",
          "debian-12-x64": "12 x64"}
REGIONS = {"fra1": "Frankfurt 1", "ams3": "Amsterdam 3", "nyc3": "New York 3"}
UNAUTHORIZED = {"id": "unauthorized", "message": "Unable to authenticate you."}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def md5_fingerprint(public_line: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_line.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None  # None: only slow
    remaining: int
    retry_after: int | None = None
    after: bool = False  # do the work first, then answer with the error
    delay: float = 0.0
    message: str | None = None  # instead of DO's standard text for the status


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None


@dataclass
class _Action:
    id: int
    droplet_id: int
    polls_left: int
    status: str = "in-progress"


@dataclass
class FakeDigitalOcean:
    ca: TestCA
    workdir: Path
    token: str = "fake-token-0123456789"
    droplet_ip: str = "127.0.0.1"
    action_polls: int = 2  # answers "in-progress" this many times, then "completed"
    max_per_page: int = 200
    on_create: Callable[[JSON, JSON], None] | None = None  # (droplet, request body)
    droplets: dict[int, JSON] = field(default_factory=dict)
    domains: dict[str, list[JSON]] = field(default_factory=dict)
    ssh_keys: list[JSON] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(3164444)
        self._actions: dict[int, _Action] = {}
        self._boot: dict[int, int] = {}  # droplet id -> polls until active
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- test controls ------------------------------------------------------------

    def add_ssh_key(self, public_line: str, name: str = "laptop") -> int:
        with self._lock:
            key_id = next(self._ids)
            self.ssh_keys.append({"id": key_id, "fingerprint": md5_fingerprint(public_line),
                                  "public_key": public_line, "name": name})
            return key_id

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

    def add_droplet(self, name: str, ip: str | None = None, tags: tuple[str, ...] = (),
                    size: str = "s-4vcpu-8gb") -> JSON:
        with self._lock:
            droplet = self._droplet({"name": name, "size": size, "region": "fra1",
                                     "image": "ubuntu-24-04-x64", "tags": list(tags)})
            self._activate(droplet, ip or self.droplet_ip)
            return droplet

    def fail(self, method: str, path: str, status: int, times: int = 1,
             retry_after: int | None = None, after: bool = False,
             message: str | None = None) -> None:
        """Answer `status` to the next `times` requests matching method and path regex."""
        with self._lock:
            self.faults.append(Fault(method, re.compile(path), status, times, retry_after,
                                     after, message=message))

    def slow(self, method: str, path: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(method, re.compile(path), None, times, delay=seconds))

    def calls(self, method: str, path: str) -> list[Logged]:
        pattern = re.compile(path)
        with self._lock:
            return [e for e in self.log if e.method == method and pattern.fullmatch(e.path)]

    def a_records(self, domain: str, name: str) -> list[JSON]:
        with self._lock:
            return [r for r in self.domains[domain] if r["type"] == "A" and r["name"] == name]

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeDigitalOcean:
        cert, key = self.ca.issue(self.workdir, ["127.0.0.1", "localhost"], "fake-do")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-do",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- model --------------------------------------------------------------------

    def _record(self, rtype: str, name: str, data: str, ttl: int) -> JSON:
        return {"id": next(self._ids), "type": rtype, "name": name, "data": data,
                "priority": None, "port": None, "ttl": ttl, "weight": None, "flags": None,
                "tag": None}

    def _droplet(self, body: JSON) -> JSON:
        vcpus, memory = SIZES[body["size"]]
        droplet = {
            "id": next(self._ids), "name": body["name"], "memory": memory, "vcpus": vcpus,
            "disk": 25 * vcpus, "locked": False, "status": "new", "kernel": None,
            "created_at": _now(), "features": ["monitoring", "ipv6"], "backup_ids": [],
            "next_backup_window": None, "snapshot_ids": [],
            "image": {"id": 161000000, "name": IMAGES[body["image"]], "distribution":
                      body["image"].split("-")[0].title(), "slug": body["image"],
                      "public": True, "type": "base", "status": "available"},
            "volume_ids": [], "size": {"slug": body["size"], "memory": memory,
                                       "vcpus": vcpus, "disk": 25 * vcpus},
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

    def handle(self, method: str, path: str, query: dict[str, str],
               body: Any) -> tuple[int, JSON | None]:
        with self._lock:
            for pattern, verb, fn in _ROUTES:
                match = re.fullmatch(pattern, path)
                if match and verb == method:
                    return fn(self, query, body, *match.groups())
        return 404, {"id": "not_found", "message": "The resource you requested could not "
                     "be found."}

    def _page(self, path: str, query: dict[str, str], key: str,
              items: list[JSON]) -> tuple[int, JSON]:
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

    def r_keys(self, query: dict[str, str], body: Any) -> tuple[int, JSON]:
        return self._page("/v2/account/keys", query, "ssh_keys", list(self.ssh_keys))

    def r_droplets(self, query: dict[str, str], body: Any) -> tuple[int, JSON]:
        if "name" in query and "tag_name" in query:
            # The API documents that the two filters cannot be combined.
            return 422, {"id": "unprocessable_entity",
                         "message": "name and tag_name filters cannot be combined"}
        items = sorted(self.droplets.values(), key=lambda d: d["id"])
        if "tag_name" in query:
            items = [d for d in items if query["tag_name"] in d["tags"]]
        if "name" in query:
            items = [d for d in items if d["name"].lower() == query["name"].lower()]
        return self._page("/v2/droplets", query, "droplets", items)

    def r_create(self, query: dict[str, str], body: Any) -> tuple[int, JSON]:
        if not isinstance(body, dict) or "names" in body:
            return 422, {"id": "unprocessable_entity", "message": "expected one droplet"}
        for required in ("name", "region", "size", "image"):
            if not body.get(required):
                return 422, {"id": "unprocessable_entity", "message": f"{required} is required"}
        if body["size"] not in SIZES:
            return 422, {"id": "unprocessable_entity",
                         "message": "You specified an invalid size for Droplet creation."}
        if body["image"] not in IMAGES:
            return 422, {"id": "unprocessable_entity",
                         "message": "You specified an invalid image for Droplet creation."}
        if body["region"] not in REGIONS:
            return 422, {"id": "unprocessable_entity",
                         "message": "You specified an invalid region for Droplet creation."}
        known = {k["id"] for k in self.ssh_keys} | {k["fingerprint"] for k in self.ssh_keys}
        if any(k not in known for k in body.get("ssh_keys") or []):
            return 422, {"id": "unprocessable_entity",
                         "message": "One or more of the SSH keys provided are invalid."}
        if len(body.get("user_data") or "") > 64 * 1024:
            return 422, {"id": "unprocessable_entity", "message": "user_data is too long"}
        droplet = self._droplet(body)
        action = _Action(next(self._ids), droplet["id"], self.action_polls)
        self._actions[action.id] = action
        self._boot[droplet["id"]] = self.action_polls
        if self.on_create is not None:
            self.on_create(droplet, body)
        return 202, {"droplet": droplet, "links": {"actions": [
            {"id": action.id, "rel": "create", "href": f"{self.url}/v2/actions/{action.id}"}]}}

    def r_droplet(self, query: dict[str, str], body: Any, droplet_id: str) -> tuple[int, JSON]:
        if int(droplet_id) not in self.droplets:
            return 404, {"id": "not_found", "message": "The resource you were accessing could "
                         "not be found."}
        self._tick(int(droplet_id))
        return 200, {"droplet": self.droplets[int(droplet_id)]}

    def r_delete_droplet(self, query: dict[str, str], body: Any,
                         droplet_id: str) -> tuple[int, JSON | None]:
        if self.droplets.pop(int(droplet_id), None) is None:
            return 404, {"id": "not_found", "message": "The resource you were accessing could "
                         "not be found."}
        return 204, None

    def _action_json(self, action: _Action) -> JSON:
        done = action.status == "completed"
        return {"action": {"id": action.id, "status": action.status, "type": "create",
                           "started_at": _now(), "completed_at": _now() if done else None,
                           "resource_id": action.droplet_id, "resource_type": "droplet",
                           "region_slug": "fra1"}}

    def r_action(self, query: dict[str, str], body: Any, action_id: str,
                 droplet_id: str | None = None) -> tuple[int, JSON]:
        action = self._actions.get(int(action_id))
        if action is None or (droplet_id is not None and action.droplet_id != int(droplet_id)):
            return 404, {"id": "not_found", "message": "The resource you were accessing could "
                         "not be found."}
        self._tick(action.droplet_id)
        return 200, self._action_json(action)

    def r_droplet_action(self, query: dict[str, str], body: Any, droplet_id: str,
                         action_id: str) -> tuple[int, JSON]:
        return self.r_action(query, body, action_id, droplet_id)

    def r_domains(self, query: dict[str, str], body: Any) -> tuple[int, JSON]:
        items = [{"name": n, "ttl": 1800, "zone_file": ""} for n in sorted(self.domains)]
        return self._page("/v2/domains", query, "domains", items)

    def r_domain(self, query: dict[str, str], body: Any, name: str) -> tuple[int, JSON]:
        if name not in self.domains:
            return 404, {"id": "not_found", "message": "The resource you were accessing could "
                         "not be found."}
        return 200, {"domain": {"name": name, "ttl": 1800, "zone_file": f"$ORIGIN {name}.\n"}}

    def r_records(self, query: dict[str, str], body: Any, name: str) -> tuple[int, JSON]:
        if name not in self.domains:
            return self.r_domain(query, body, name)
        items = self.domains[name]
        if "name" in query:  # the fully qualified name, as the API documents
            items = [r for r in items
                     if (name if r["name"] == "@" else f"{r['name']}.{name}") == query["name"]]
        if "type" in query:
            items = [r for r in items if r["type"] == query["type"]]
        return self._page(f"/v2/domains/{name}/records", query, "domain_records", items)

    def r_create_record(self, query: dict[str, str], body: Any, name: str) -> tuple[int, JSON]:
        if name not in self.domains:
            return self.r_domain(query, body, name)
        if not isinstance(body, dict) or not all(body.get(k) for k in ("type", "name", "data")):
            return 422, {"id": "unprocessable_entity", "message": "type, name and data are "
                         "required"}
        if body["name"].endswith("." + name):
            return 422, {"id": "unprocessable_entity", "message": "Name is not valid: give "
                         "the name relative to the domain"}
        record = self._record(body["type"], body["name"], body["data"], body.get("ttl", 1800))
        self.domains[name].append(record)
        return 201, {"domain_record": record}

    def _find_record(self, name: str, record_id: str) -> JSON | None:
        return next((r for r in self.domains.get(name, []) if r["id"] == int(record_id)), None)

    def r_update_record(self, query: dict[str, str], body: Any, name: str,
                        record_id: str) -> tuple[int, JSON]:
        record = self._find_record(name, record_id)
        if record is None:
            return 404, {"id": "not_found", "message": "The resource you were accessing could "
                         "not be found."}
        if not isinstance(body, dict) or body.get("type", record["type"]) != record["type"]:
            return 422, {"id": "unprocessable_entity", "message": "type cannot be changed"}
        record.update({k: v for k, v in body.items() if k in ("name", "data", "ttl")})
        return 200, {"domain_record": record}

    def r_delete_record(self, query: dict[str, str], body: Any, name: str,
                        record_id: str) -> tuple[int, JSON | None]:
        record = self._find_record(name, record_id)
        if record is None:
            return 404, {"id": "not_found", "message": "The resource you were accessing could "
                         "not be found."}
        self.domains[name].remove(record)
        return 204, None


_ROUTES: list[tuple[str, str, Callable[..., tuple[int, JSON | None]]]] = [
    (r"/v2/account/keys", "GET", FakeDigitalOcean.r_keys),
    (r"/v2/droplets", "GET", FakeDigitalOcean.r_droplets),
    (r"/v2/droplets", "POST", FakeDigitalOcean.r_create),
    (r"/v2/droplets/(\d+)", "GET", FakeDigitalOcean.r_droplet),
    (r"/v2/droplets/(\d+)", "DELETE", FakeDigitalOcean.r_delete_droplet),
    (r"/v2/droplets/(\d+)/actions/(\d+)", "GET", FakeDigitalOcean.r_droplet_action),
    (r"/v2/actions/(\d+)", "GET", FakeDigitalOcean.r_action),
    (r"/v2/domains", "GET", FakeDigitalOcean.r_domains),
    (r"/v2/domains/([^/]+)", "GET", FakeDigitalOcean.r_domain),
    (r"/v2/domains/([^/]+)/records", "GET", FakeDigitalOcean.r_records),
    (r"/v2/domains/([^/]+)/records", "POST", FakeDigitalOcean.r_create_record),
    (r"/v2/domains/([^/]+)/records/(\d+)", "PATCH", FakeDigitalOcean.r_update_record),
    (r"/v2/domains/([^/]+)/records/(\d+)", "PUT", FakeDigitalOcean.r_update_record),
    (r"/v2/domains/([^/]+)/records/(\d+)", "DELETE", FakeDigitalOcean.r_delete_record),
]


def _handler_for(fake: FakeDigitalOcean) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as pydo's requests session expects

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is kept in fake.log instead

        def _serve(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            status, answer, extra = self._answer(url.path, query, body)
            with fake._lock:
                fake.log.append(Logged(self.command, url.path, query, status, body))
            payload = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("ratelimit-limit", "5000")
            self.send_header("ratelimit-remaining", "4999")
            self.send_header("ratelimit-reset", str(int(time.time()) + 60))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        def _answer(self, path: str, query: dict[str, str],
                    body: Any) -> tuple[int, JSON | None, dict[str, str]]:
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                return 401, UNAUTHORIZED, {}
            fault = None
            with fake._lock:
                for candidate in fake.faults:
                    if (candidate.remaining > 0 and candidate.method == self.command
                            and candidate.pattern.fullmatch(path)):
                        candidate.remaining -= 1
                        fault = candidate
                        break
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is None or fault.status is None:
                return (*fake.handle(self.command, path, query, body), {})
            if fault.after:
                fake.handle(self.command, path, query, body)
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            error = {429: ("too_many_requests", "API rate limit exceeded."),
                     400: ("bad_request", "Bad request.")}.get(
                         fault.status, ("server_error", "Unexpected server-side error"))
            return fault.status, {"id": error[0], "message": fault.message or error[1]}, extra

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
