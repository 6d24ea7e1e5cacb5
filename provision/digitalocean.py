"""DigitalOcean for create-node.py: the account, sizes and droplets (DNS records are in
provision/dns.py, the cloud firewall in provision/firewall.py, retries and errors in
provision/api.py).

A droplet is found by name and tag before and after creating it, because a
create answered 5xx may still have made the droplet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.api import JSON, Api, is_not_found
from provision.backoff import Backoff, sleep
from provision.errors import ProvisionError
from provision.userkey import UserKey

TAG = "workshop-appliance"


@dataclass(frozen=True)
class Droplet:
    id: int
    name: str
    status: str
    ipv4: str | None
    tags: list[str] = field(default_factory=list)

    @classmethod
    def from_api(cls, data: JSON) -> Droplet:
        public = [
            net.get("ip_address")
            for net in (data.get("networks") or {}).get("v4") or []
            if net.get("type") == "public"
        ]
        return cls(
            id=int(data["id"]),
            name=str(data.get("name", "")),
            status=str(data.get("status", "")),
            ipv4=public[0] if public else None,
            tags=list(data.get("tags") or []),
        )


class DigitalOcean:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._client = api.client
        self._paged = api.paged
        self._call = api.call

    # -- account -----------------------------------------------------------------

    def account_key_id(self, key: UserKey) -> int:
        """The id of the instructor's public key on the account (checks the token too)."""
        for entry in self._paged("listing the account's SSH keys",
                                 self._client.ssh_keys.list, "ssh_keys"):
            blob = (entry.get("public_key") or "").split()
            if entry.get("fingerprint") == key.md5_fingerprint or key.blob in blob:
                return int(entry["id"])
        raise ProvisionError(
            f"your SSH public key {key.path}.pub ({key.md5_fingerprint}) is not on the "
            "DigitalOcean account: add it under Settings → Security → SSH Keys, or give "
            "--ssh-key for one that is"
        )

    def check_domain(self, domain: str) -> None:
        answer = self._call(f"looking up domain {domain}", self._client.domains.get, domain)
        if is_not_found(answer):
            raise ProvisionError(
                f"domain {domain} is not managed on this DigitalOcean account: add it under "
                "Networking → Domains (and point its NS records at DigitalOcean), or give "
                "--domain"
            )

    def check_size(self, slug: str, region: str) -> JSON:
        """The size as the API lists it; refused unless droplets of it can be made in region.

        Checked before anything is made: otherwise a typo in a slug is found only
        when the create is refused, after the plan and a new host key."""
        sizes = {str(s.get("slug")): s for s in self._paged("listing droplet sizes",
                                                               self._client.sizes.list, "sizes")}
        size = sizes.get(slug)
        if size is None:
            raise ProvisionError(
                f"size {slug} is not offered by DigitalOcean: use small, medium or large, or a "
                "slug from the control panel (Create Droplet) or `doctl compute size list`")
        regions = [str(r) for r in size.get("regions") or []]
        if not size.get("available", True) or region not in regions:
            where = f" (it is in: {', '.join(sorted(regions))})" if regions else ""
            raise ProvisionError(f"size {slug} is not available in region {region}{where}: "
                                 "give --region or another --size")
        return size

    # -- droplets ----------------------------------------------------------------

    def find_droplets(self, name: str) -> list[Droplet]:
        # The API cannot filter by name and tag at once: ask for the tag (our
        # droplets only) and match the name here, case-insensitively like DO.
        found = [
            Droplet.from_api(d)
            for d in self._paged(f"listing droplets tagged {TAG}", self._client.droplets.list,
                                 "droplets", tag_name=TAG)
            if str(d.get("name", "")).lower() == name.lower()
        ]
        return sorted(found, key=lambda d: d.id)

    def get_droplet(self, droplet_id: int) -> Droplet:
        answer = self._call(f"reading droplet {droplet_id}", self._client.droplets.get,
                            droplet_id)
        if is_not_found(answer):
            raise ProvisionError(f"droplet {droplet_id} disappeared while it was being set up")
        return Droplet.from_api(answer["droplet"])

    def create_droplet(self, name: str, region: str, size: str, image: str, key_id: int,
                       user_data: str) -> tuple[Droplet, int | None]:
        """Create the droplet exactly once; return it and its create action's id (None
        when an earlier attempt, whose answer was lost, had made it)."""
        body = {
            "name": name, "region": region, "size": size, "image": image,
            "ssh_keys": [key_id], "tags": [TAG], "user_data": user_data,
            "ipv6": True, "monitoring": True,
        }

        def made(answer: JSON) -> tuple[Droplet, int | None]:
            actions = (answer.get("links") or {}).get("actions") or []
            action_id = next((int(a["id"]) for a in actions if a.get("rel") == "create"), None)
            return Droplet.from_api(answer["droplet"]), action_id

        def find() -> tuple[Droplet, int | None] | None:
            found = self.find_droplets(name)
            return (found[0], None) if found else None

        (droplet, action_id), lost = self.api.create(
            f"creating droplet {name}", self._client.droplets.create, body, made, find)
        if lost:
            self.api.progress.say(f"create answered '{lost}', but droplet {name} exists "
                                  f"(id {droplet.id}): using it")
        return droplet, action_id

    def remove_duplicates(self, name: str, keep: int) -> list[int]:
        """Destroy other droplets of this name and tag made by this run; return their ids."""
        extra = [d.id for d in self.find_droplets(name) if d.id != keep]
        for droplet_id in extra:
            self.destroy_droplet(droplet_id)
        return extra

    def wait_action(self, action_id: int, what: str, backoff: Backoff) -> None:
        delays = backoff.delays()
        while True:
            answer = self._call(f"checking {what}", self._client.actions.get, action_id)
            if is_not_found(answer):
                raise ProvisionError(f"DigitalOcean lost track of {what} (action {action_id})")
            status = (answer.get("action") or {}).get("status")
            if status == "completed":
                return
            if status == "errored":
                raise ProvisionError(f"DigitalOcean reports that {what} failed "
                                     f"(action {action_id} errored)")
            delay = next(delays, None)
            if delay is None:
                raise ProvisionError(f"{what} did not complete within {backoff.timeout:.0f}s")
            sleep(delay)

    def wait_active(self, droplet_id: int, backoff: Backoff) -> Droplet:
        delays = backoff.delays()
        while True:
            droplet = self.get_droplet(droplet_id)
            if droplet.status == "active" and droplet.ipv4:
                return droplet
            if droplet.status in ("off", "archive"):
                raise ProvisionError(f"droplet {droplet.name} (id {droplet.id}) is "
                                     f"{droplet.status}: power it on in the control panel")
            delay = next(delays, None)
            if delay is None:
                raise ProvisionError(f"droplet {droplet.name} is still {droplet.status} "
                                     f"after {backoff.timeout:.0f}s")
            sleep(delay)

    def destroy_droplet(self, droplet_id: int) -> None:
        self._call(f"deleting droplet {droplet_id}", self._client.droplets.destroy, droplet_id)
