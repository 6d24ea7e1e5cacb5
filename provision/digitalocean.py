"""What create-node.py needs from DigitalOcean, on top of the official pydo client.

Adds what pydo leaves to the caller: readable one-line errors, retries with
backoff once pydo's own retries are used up, pagination, and idempotency
(a droplet is found by name and tag before and after creating it, because a
create answered 5xx may still have made the droplet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pydo
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from provision.backoff import Backoff, sleep
from provision.errors import ProvisionError, one_line
from provision.progress import Progress
from provision.ssh import UserKey

TAG = "workshop-appliance"
RECORD_TTL = 300  # short, so a recreated droplet's new address spreads quickly
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
PER_PAGE = 200  # the API's maximum: fewest round trips

JSON = dict[str, Any]


class TransientApiError(ProvisionError):
    """A 429/5xx or lost connection that survived pydo's own retries."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiUnreachable(TransientApiError):
    """No answer at all. pydo already retried the connection; retrying more only delays
    the message (a create, whose fate is unknown, still checks before it retries)."""


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


@dataclass(frozen=True)
class Record:
    id: int
    name: str
    data: str


def _is_not_found(answer: Any) -> bool:
    # pydo returns DigitalOcean's error body instead of raising for the 404s
    # the API spec lists: {"id": "not_found", "message": ...}.
    return isinstance(answer, dict) and answer.get("id") == "not_found"


def _error_text(exc: HttpResponseError) -> str:
    try:
        body = exc.response.json() if exc.response is not None else {}
    except Exception:  # a proxy's HTML page, an empty body: fall back to the status
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {exc.status_code} {one_line(message or exc.reason or '')}".strip()


def _retry_after(exc: HttpResponseError) -> float | None:
    value = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None


class DigitalOcean:
    def __init__(self, token: str, api_url: str, progress: Progress,
                 backoff: Backoff | None = None) -> None:
        self.api_url = api_url
        self._client = pydo.Client(token=token, endpoint=api_url)
        self._progress = progress
        self._backoff = backoff or Backoff(first=2.0, factor=2.0, maximum=30.0, timeout=120.0)

    # -- calling the API ---------------------------------------------------------

    def _once(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One call (pydo may retry inside it), with errors turned into one line."""
        try:
            return fn(*args, **kwargs)
        except ClientAuthenticationError:
            raise ProvisionError(
                "DigitalOcean refused the token (401 Unable to authenticate you): check "
                "DIGITALOCEAN_TOKEN; tokens can expire or be revoked"
            ) from None
        except HttpResponseError as exc:
            if exc.status_code in RETRY_STATUS:
                raise TransientApiError(f"{what}: {_error_text(exc)}", _retry_after(exc)) \
                    from None
            if exc.status_code == 403:
                raise ProvisionError(
                    f"DigitalOcean denied {what} (403): the token needs read and write scope"
                ) from None
            raise ProvisionError(f"DigitalOcean API error while {what}: {_error_text(exc)}") \
                from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            detail = one_line(str(exc)).split("new connection: ")[-1]
            raise ApiUnreachable(
                f"cannot reach the DigitalOcean API at {self.api_url} while {what} ({detail})"
            ) from None

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call that is safe to repeat, retried with backoff on 429/5xx."""
        delays = self._backoff.delays()
        while True:
            try:
                return self._once(what, fn, *args, **kwargs)
            except ApiUnreachable as exc:
                raise ProvisionError(exc.message) from None
            except TransientApiError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise ProvisionError(f"DigitalOcean API kept failing: {exc.message}") \
                        from None
                wait = max(delay, exc.retry_after or 0.0)
                self._progress.say(f"DigitalOcean API busy ({exc.message}); retrying in "
                                   f"{wait:.1f}s")
                sleep(wait)

    def _paged(self, what: str, fn: Callable[..., JSON], key: str,
               **kwargs: Any) -> Iterator[JSON]:
        # pydo does not paginate: follow links.pages.next until there is none.
        page = 1
        while True:
            answer = self._call(what, fn, per_page=PER_PAGE, page=page, **kwargs)
            if _is_not_found(answer):
                raise ProvisionError(f"DigitalOcean: not found while {what}")
            yield from answer.get(key) or []
            next_url = ((answer.get("links") or {}).get("pages") or {}).get("next")
            if not next_url:
                return
            following = int(parse_qs(urlparse(next_url).query).get("page", ["0"])[0])
            if following <= page:  # a broken link would loop forever
                return
            page = following

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
        if _is_not_found(answer):
            raise ProvisionError(
                f"domain {domain} is not managed on this DigitalOcean account: add it under "
                "Networking → Domains (and point its NS records at DigitalOcean), or give "
                "--domain"
            )

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
        if _is_not_found(answer):
            raise ProvisionError(f"droplet {droplet_id} disappeared while it was being set up")
        return Droplet.from_api(answer["droplet"])

    def create_droplet(self, name: str, region: str, size: str, image: str, key_id: int,
                       user_data: str) -> tuple[Droplet, int | None]:
        """Create the droplet exactly once; return it and its create action's id.

        pydo would resend a create answered 5xx, and the first one may have
        succeeded: its retries are switched off here and, after a failure, we
        look for the droplet by name before trying again.
        """
        body = {
            "name": name, "region": region, "size": size, "image": image,
            "ssh_keys": [key_id], "tags": [TAG], "user_data": user_data,
            "ipv6": True, "monitoring": True,
        }
        delays = self._backoff.delays()
        while True:
            try:
                answer = self._once(f"creating droplet {name}", self._client.droplets.create,
                                    body, retry_total=0)
                break
            except TransientApiError as exc:
                found = self.find_droplets(name)
                if found:
                    self._progress.say(f"create answered '{exc.message}', but droplet {name} "
                                       f"exists (id {found[0].id}): using it")
                    return found[0], None
                delay = next(delays, None)
                if delay is None:
                    raise ProvisionError(f"DigitalOcean API kept failing: {exc.message}") \
                        from None
                wait = max(delay, exc.retry_after or 0.0)
                self._progress.say(f"{exc.message}; no droplet was made, retrying in {wait:.1f}s")
                sleep(wait)
        droplet = Droplet.from_api(answer["droplet"])
        actions = (answer.get("links") or {}).get("actions") or []
        action_id = next((int(a["id"]) for a in actions if a.get("rel") == "create"), None)
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
            if _is_not_found(answer):
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

    # -- DNS ---------------------------------------------------------------------

    def a_records(self, domain: str, fqdn: str) -> list[Record]:
        # The name filter takes the fully qualified name (lab.example.org).
        return [
            Record(int(r["id"]), str(r.get("name", "")), str(r.get("data", "")))
            for r in self._paged(f"listing DNS records of {fqdn}",
                                 self._client.domains.list_records, "domain_records",
                                 domain_name=domain, name=fqdn, type="A")
        ]

    def ensure_a_record(self, domain: str, relative: str, fqdn: str, ip: str) -> str:
        """Point fqdn's A record at ip; return what was done, for the progress line."""
        records = self.a_records(domain, fqdn)
        for extra in records[1:]:
            # Two A records would send Let's Encrypt and browsers to random hosts.
            self._call(f"deleting a second A record of {fqdn}",
                       self._client.domains.delete_record, domain, extra.id)
        if not records:
            self._call(f"creating the A record {fqdn}", self._client.domains.create_record,
                       domain, {"type": "A", "name": relative, "data": ip, "ttl": RECORD_TTL})
            return f"created {fqdn} → {ip}"
        record = records[0]
        note = f" (removed {len(records) - 1} duplicate)" if len(records) > 1 else ""
        if record.data == ip:
            return f"{fqdn} → {ip} already{note}"
        self._call(f"updating the A record {fqdn}", self._client.domains.patch_record,
                   domain, record.id, {"type": "A", "data": ip})
        return f"updated {fqdn}: {record.data} → {ip}{note}"

    def delete_a_records(self, domain: str, fqdn: str, ip: str) -> int:
        """Delete fqdn's A records that point at ip (others are not ours to remove)."""
        deleted = 0
        for record in self.a_records(domain, fqdn):
            if record.data == ip:
                self._call(f"deleting the A record {fqdn}", self._client.domains.delete_record,
                           domain, record.id)
                deleted += 1
        return deleted
