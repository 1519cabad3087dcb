"""What the sync and async clients share, without I/O: requests, retries, answers, SSE frames."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bend import __version__
from bend.client.errors import ApiError, error_for

__all__ = [
    "DEFAULT_BASE_URL", "NO_RETRIES", "RETRIED_STATUSES", "Call", "RetryPolicy", "SseFrame",
    "SseParser", "Writes", "failure", "headers_for", "position_of", "post", "query",
    "retry_after_s",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a 429 or 503 is sent again: at most `retries` times and
    `max_wait_s` of waiting in all; each wait is the answer's Retry-After (a longer one than
    `max_delay_s` is not waited for: the error is raised with it), or without one `backoff_s`
    doubled per attempt, capped at `max_delay_s`."""

    retries: int = 5
    max_wait_s: float = 30.0
    backoff_s: float = 0.5
    max_delay_s: float = 10.0

    def wait_s(self, response: httpx.Response, attempt: int, waited_s: float) -> float | None:
        """How long to wait before sending again after `response` (the `attempt`-th, from 0),
        or None to give up and hand the answer back."""
        if response.status_code not in RETRIED_STATUSES or attempt >= self.retries:
            return None
        told = retry_after_s(response)
        if told is not None and told > self.max_delay_s:
            return None  # sooner would be refused again: hand the error (and its wait) back
        wait = told if told is not None else min(self.backoff_s * 2 ** attempt, self.max_delay_s)
        return None if waited_s + wait > self.max_wait_s else wait


NO_RETRIES = RetryPolicy(retries=0)


def retry_after_s(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The Retry-After header in seconds (delay-seconds or an HTTP date), None if absent/bad."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass(frozen=True, slots=True)
class Call:
    """One request to send: method, path, query and JSON body (or none)."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    has_body: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `httpx.Client.request` for this call."""
        kwargs: dict[str, Any] = {"params": query(self.params)}
        if self.has_body:
            kwargs["json"] = self.body
        elif self.content is not None:
            kwargs["content"] = self.content
        if self.headers:
            kwargs["headers"] = self.headers
        return kwargs


def post(path: str, body: Any = None, **params: Any) -> Call:
    """A POST of `body` as JSON (null included)."""
    return Call("POST", path, params, body, has_body=True)


def query(params: dict[str, Any]) -> dict[str, Any]:
    """`params` without None or empty values; datetimes as ISO text."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == [] or value == ():
            continue
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def headers_for(api_key: str | None, product: str = "bend-client") -> dict[str, str]:
    """Default headers: user agent (`product`/version), JSON, and the key as a bearer token."""
    headers = {"User-Agent": f"{product}/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def failure(response: httpx.Response) -> ApiError:
    """The typed error of an error answer (its body read already)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:300]
        body = {"detail": f"HTTP {response.status_code}" + (f": {text}" if text else "")}
    return error_for(response.status_code, body, retry_after_s(response))


def position_of(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with its `position` object flattened to the token (a `wait_for` value)."""
    position = body.get("position")
    if isinstance(position, dict):
        return {**body, "position": position.get("token")}
    return body


class Writes:
    """Where the client's last command for each run landed: reads of that run pass it as
    `wait_for`, so a run just started, signalled or cancelled reads as the client left it."""

    def __init__(self, keep: int = 1000) -> None:
        self._positions: dict[str, str] = {}
        self._keep = keep

    def remember(self, answer: object) -> None:
        """Note the position of an answer that names a run and one (Started, Sent)."""
        run_id, position = getattr(answer, "run_id", None), getattr(answer, "position", None)
        if isinstance(run_id, str) and isinstance(position, str):
            self._positions.pop(run_id, None)
            self._positions[run_id] = position
            if len(self._positions) > self._keep:
                del self._positions[next(iter(self._positions))]

    def of(self, run_id: str, given: str | None = None) -> str | None:
        """`given`, else the last position written for `run_id` (None if none)."""
        return given or self._positions.get(run_id)


@dataclass(frozen=True, slots=True)
class SseFrame:
    """One server-sent event: `event` its type, `data` its JSON text, `id` the seq."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The frame's data, parsed."""
        return json.loads(self.data) if self.data else None


class SseParser:
    """Frames out of an event stream's lines, fed in any number of pieces."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []
        self.last_id: str | None = None

    def feed(self, lines: Iterable[str]) -> Iterator[SseFrame]:
        """The frames the lines complete (comments and keep-alives are skipped)."""
        for line in lines:
            if not line:
                if self._data:
                    yield SseFrame(self._event, "\n".join(self._data), self.last_id)
                self._event, self._data = "message", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            elif name == "id":
                self.last_id = value
