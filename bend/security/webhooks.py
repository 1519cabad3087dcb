"""Webhook signatures: HMAC-SHA256 over `<t>.<body>`, a tolerance window and replay refusal.

Senders put `X-Bend-Signature: t=<unix seconds>,v1=<hex>` on each delivery; several `v1=`
may be sent while a hook's secret is being rotated, and one match suffices.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import asyncpg

from bend.security.errors import BadSignature, MissingHeader, ReplayedDelivery, StaleTimestamp

__all__ = [
    "NO_MATCH", "SIGNATURE_HEADER", "sign", "verify", "refuse_unknown", "ReplayGuard",
    "MemoryReplayGuard", "PostgresReplayGuard",
]

SIGNATURE_HEADER = "X-Bend-Signature"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _digest(secret: str | bytes, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    payload = body.encode() if isinstance(body, str) else body
    return hmac.new(key, f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, timestamp: int, body: bytes | str) -> str:
    """The `X-Bend-Signature` value for a delivery of `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


class ReplayGuard(Protocol):
    """Remembers accepted signatures until they expire."""

    async def first_time(self, key: str, expires_at: float, now: float) -> bool:
        """Record `key` until `expires_at`; False if it is already recorded and unexpired."""
        ...


class MemoryReplayGuard:
    """A ReplayGuard for one process (tests, single-process dev)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def first_time(self, key: str, expires_at: float, now: float) -> bool:
        """Record `key` until `expires_at`; False if it is already recorded and unexpired."""
        if len(self._seen) > 10_000:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        if self._seen.get(key, now) > now:
            return False
        self._seen[key] = expires_at
        return True


class PostgresReplayGuard:
    """A ReplayGuard shared by every API process, in `sec_webhook_seen`."""

    def __init__(self, pool: asyncpg.Pool, purge_every: int = 500) -> None:
        self._pool = pool
        self._purge_every = purge_every
        self._calls = 0

    async def first_time(self, key: str, expires_at: float, now: float) -> bool:
        """Record `key` until `expires_at`; False if it is already recorded and unexpired."""
        self._calls += 1
        if self._calls % self._purge_every == 0:
            await self.purge(now)
        # One statement, so two processes given the same delivery cannot both accept it: the
        # second waits on the first's row and then finds it unexpired.
        row = await self._pool.fetchrow(
            "INSERT INTO sec_webhook_seen (key, expires_at) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at"
            " WHERE sec_webhook_seen.expires_at <= $3 RETURNING 1",
            key, _at(expires_at), _at(now),
        )
        return row is not None

    async def purge(self, now: float) -> int:
        """Forget expired signatures; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM sec_webhook_seen WHERE expires_at <= $1", _at(now)
        )
        return int(status.split()[-1])


def _at(epoch_s: float) -> datetime:
    """Epoch seconds as an aware datetime."""
    return datetime.fromtimestamp(epoch_s, UTC)


_SECONDS = re.compile(r"[0-9]{1,12}")


def _parse(value: str) -> tuple[int, list[str]]:
    """The timestamp and v1 signatures of a header value, or BadSignature."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        if name == "t":
            if not _SECONDS.fullmatch(item):  # ASCII digits only: int() takes "²" and 5,000 digits
                raise BadSignature("t is not a whole number of seconds")
            timestamp = int(item)
        elif name == "v1" and _HEX64.fullmatch(item):
            signatures.append(item)
    if timestamp is None:
        raise BadSignature("no t=")
    if not signatures:
        raise BadSignature("no v1=<64 hex digits>")
    return timestamp, signatures


# Said alike of a signature that does not match and of a path where no enabled hook listens,
# so an unsigned caller cannot tell which paths exist.
NO_MATCH = ("it does not match the body and timestamp under the secret of an enabled hook at "
            "this path")


def refuse_unknown(body: bytes | str) -> BadSignature:
    """The refusal of a delivery to a path no enabled hook listens on: a signature mismatch,
    after as much work as checking one takes."""
    _digest(secrets.token_bytes(32), 0, body)
    return BadSignature(NO_MATCH)


async def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    now: float,
    tolerance_s: float,
    seen: ReplayGuard,
    *,
    required_headers: Iterable[str] = (),
    scope: str = "",
    check: Callable[[Mapping[str, str]], None] | None = None,
) -> int:
    """Check a delivery and return its timestamp; raises BadSignature, StaleTimestamp,
    ReplayedDelivery (401), or MissingHeader (400) once the signature holds. `check` runs the
    caller's checks of an authentic delivery before it is recorded as seen. `scope` (e.g. the
    trigger id) separates hooks.

    Only authentic, fresh deliveries are recorded, so forged requests cannot fill the guard.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(SIGNATURE_HEADER.lower())
    if not value:
        raise BadSignature(f"no {SIGNATURE_HEADER} header")
    timestamp, signatures = _parse(value)
    expected = _digest(secret, timestamp, body)
    matched = next((s for s in signatures if hmac.compare_digest(s, expected)), None)
    if matched is None:
        raise BadSignature(NO_MATCH)
    # Only an authentic delivery learns what else the hook requires.
    for header in required_headers:
        if not lowered.get(header.lower()):
            raise MissingHeader(header)
    if abs(now - timestamp) > tolerance_s:
        raise StaleTimestamp(timestamp, now, tolerance_s)
    if check is not None:  # the caller's own checks of an authentic delivery, before it counts
        check(headers)
    key = hashlib.sha256(f"{scope}\x00{matched}".encode()).hexdigest()
    # Kept one second past the window's edge, where the stale check takes over.
    if not await seen.first_time(key, timestamp + tolerance_s + 1, now):
        raise ReplayedDelivery()
    return timestamp
