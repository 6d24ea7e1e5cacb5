"""Calling the DigitalOcean API through pydo: one-line errors, a retry budget, pagination,
and creates that are never repeated blindly.

Retrying lives here and only here. pydo (azure-core underneath) would retry 429/5xx
answers by itself, silently, and sleep whatever a Retry-After header asks, past any
budget; it would also resend a POST answered 500, although the first one may have
done its work. So pydo keeps only its retries of connections that never reached the
server, and every retry of an answer goes through `Api.call` (or `Api.create`): it says
what it waits for, waits at most what --api-timeout leaves, and a create first checks
whether the failed attempt made the thing after all.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
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

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
PER_PAGE = 200  # the API's maximum: fewest round trips

JSON = dict[str, Any]
T = TypeVar("T")


class TransientApiError(ProvisionError):
    """A 429/5xx answer, or no answer at all: worth another try."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiUnreachable(TransientApiError):
    """No answer at all. pydo already retried the connection; retrying more only delays
    the message (a create, whose fate is unknown, still checks before it retries)."""


def is_not_found(answer: Any) -> bool:
    # pydo returns DigitalOcean's error body instead of raising for the 404s
    # the API spec lists: {"id": "not_found", "message": ...}.
    return isinstance(answer, dict) and answer.get("id") == "not_found"


def _error_body(answer: Any) -> str | None:
    """The text of an error body pydo returned instead of raising (the spec lists 400
    for firewall creates and updates), or None for a real answer. Error bodies are the
    only top-level objects with both an "id" string and a "message"."""
    if (isinstance(answer, dict) and isinstance(answer.get("id"), str)
            and "message" in answer and answer["id"] != "not_found"):
        return f"{answer['id']}: {one_line(str(answer['message']))}"
    return None


def _error_text(exc: HttpResponseError) -> str:
    try:
        body = exc.response.json() if exc.response is not None else {}
    except Exception:  # a proxy's HTML page, an empty body: fall back to the status
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {exc.status_code} {one_line(message or exc.reason or '')}".strip()


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return seconds if seconds > 0 else None


def client(token: str, api_url: str) -> pydo.Client:
    # retry_status=0: pydo hands every 429/5xx straight back (see the module docstring);
    # its retries of failed connections stay.
    return pydo.Client(token=token, endpoint=api_url, retry_status=0)


@dataclass
class _Budget:
    """What one call may still spend on waiting: --api-timeout from its first attempt."""

    backoff: Backoff

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.backoff.timeout
        self.delays = self.backoff.delays()

    def wait_for(self, exc: TransientApiError, what: str) -> float:
        delay = next(self.delays, None)
        if exc.retry_after is not None:
            left = self.deadline - time.monotonic()
            if exc.retry_after > left:
                raise ProvisionError(
                    f"DigitalOcean asks to wait {exc.retry_after:.0f}s before retrying {what} "
                    f"({exc.message}), more than the {max(left, 0):.0f}s left of --api-timeout "
                    f"{self.backoff.timeout:g}: try again later or raise --api-timeout")
            return max(exc.retry_after, delay or 0.0)
        if delay is None:
            raise ProvisionError(f"DigitalOcean API kept failing: {what}: {exc.message}")
        return delay


class Api:
    def __init__(self, token: str, api_url: str, progress: Progress,
                 backoff: Backoff | None = None) -> None:
        self.api_url = api_url
        self.client = client(token, api_url)
        self.progress = progress
        self.backoff = backoff or Backoff(first=1.0, factor=2.0, maximum=30.0, timeout=120.0)

    def once(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One request, with errors turned into one line."""
        try:
            answer = fn(*args, **kwargs)
        except ClientAuthenticationError:
            raise ProvisionError(
                "DigitalOcean refused the token (401 Unable to authenticate you): check "
                "DIGITALOCEAN_TOKEN; tokens can expire or be revoked"
            ) from None
        except HttpResponseError as exc:
            text = _error_text(exc)
            if exc.status_code in RETRY_STATUS:
                header = exc.response.headers.get("Retry-After") if exc.response else None
                raise TransientApiError(text, retry_after(header)) from None
            if exc.status_code == 403:
                raise ProvisionError(
                    f"DigitalOcean denied {what} (403): the token needs read and write scope"
                ) from None
            raise ProvisionError(f"DigitalOcean API error while {what}: {text}") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            detail = one_line(str(exc)).split("new connection: ")[-1]
            raise ApiUnreachable(
                f"cannot reach the DigitalOcean API at {self.api_url} while {what} ({detail})"
            ) from None
        failure = _error_body(answer)
        if failure is not None:
            raise ProvisionError(f"DigitalOcean API error while {what}: {failure}")
        return answer

    def _pause(self, budget: _Budget, exc: TransientApiError, what: str, note: str = "") -> None:
        wait = budget.wait_for(exc, what)
        if exc.retry_after is not None:
            self.progress.say(f"DigitalOcean asks to wait {wait:.0f}s before retrying {what} "
                              f"({exc.message}){note}; waiting")
        else:
            self.progress.say(f"DigitalOcean API busy ({what}: {exc.message}){note}; retrying "
                              f"in {wait:.1f}s")
        sleep(wait)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A request that is safe to repeat, retried on 429/5xx within the budget."""
        budget = _Budget(self.backoff)
        while True:
            try:
                return self.once(what, fn, *args, **kwargs)
            except ApiUnreachable as exc:
                raise ProvisionError(exc.message) from None
            except TransientApiError as exc:
                self._pause(budget, exc, what)

    def create(self, what: str, send: Callable[..., JSON], body: JSON,
               made: Callable[[JSON], T], find: Callable[[], T | None],
               *args: Any) -> tuple[T, str | None]:
        """POST once; after a failure, look before sending it again.

        A create answered 5xx (or not answered) may still have made the thing, and a
        blind retry would make a second one. Returns what was made and, when the answer
        was lost but the thing exists, the error that was answered (else None).
        """
        budget = _Budget(self.backoff)
        while True:
            try:
                return made(self.once(what, send, *args, body, retry_total=0)), None
            except TransientApiError as exc:
                found = find()
                if found is not None:
                    return found, exc.message
                self._pause(budget, exc, what, "; nothing was made")

    def paged(self, what: str, fn: Callable[..., JSON], key: str,
              **kwargs: Any) -> Iterator[JSON]:
        """Every item of a list, following links.pages.next (pydo does not paginate)."""
        page = 1
        while True:
            answer = self.call(what, fn, per_page=PER_PAGE, page=page, **kwargs)
            if is_not_found(answer):
                raise ProvisionError(f"DigitalOcean: not found while {what}")
            yield from answer.get(key) or []
            next_url = ((answer.get("links") or {}).get("pages") or {}).get("next")
            if not next_url:
                return
            following = int(parse_qs(urlparse(next_url).query).get("page", ["0"])[0])
            if following <= page:  # a broken link would loop forever
                return
            page = following
