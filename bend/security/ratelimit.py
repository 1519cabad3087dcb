"""Token-bucket rate limits per API key and per client address: in Postgres, shared by every API
replica (the default), or in the process (one replica, tests)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from bend.security.errors import RateLimited
from bend.security.roles import Principal
from bend.settings import SecuritySettings

__all__ = ["Decision", "Limiter", "PostgresBucketLimiter", "RateLimits", "TokenBucketLimiter"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed, or refused with the seconds until the request would be allowed."""

    allowed: bool
    retry_after_s: float = 0.0


class TokenBucketLimiter:
    """One bucket per key: holds up to `burst` tokens, refilled at `rate_per_s`; a request
    takes one. Thread- and asyncio-safe (`check` never awaits; a lock covers threadpool callers).
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (tokens, as of); least recently used first, so memory stays bounded when
        # many addresses come once: the evicted buckets are the likeliest to be full again.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, cost: float = 1.0) -> Decision:
        """Take `cost` tokens from `key`'s bucket if it has them."""
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the burst {self.burst}; it could never pass")
        with self._lock:
            now = self._clock()
            tokens, since = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - since) * self.rate_per_s)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        if allowed:
            return Decision(allowed=True)
        return Decision(allowed=False, retry_after_s=(cost - tokens) / self.rate_per_s)

    def __len__(self) -> int:
        return len(self._buckets)


    async def acquire(self, key: str, cost: float = 1.0) -> Decision:
        """`check`, as the shared limiter is called."""
        return self.check(key, cost)


class Limiter(Protocol):
    """Takes tokens from a key's bucket."""

    async def acquire(self, key: str, cost: float = 1.0) -> Decision:
        """Allowed (the tokens taken), or refused with when to retry."""
        ...


# One statement per request: refill the bucket for the time since its last request, take the
# cost if it is there, and say whether it was. Rows of every replica meet here, under the row
# lock, so N replicas share one budget.
_TAKE = """
WITH args AS (SELECT $1::text AS key, $2::float8 AS burst, $3::float8 AS rate, $4::float8 AS cost,
                     clock_timestamp() AS t)
INSERT INTO sec_rate_buckets AS b (key, tokens, as_of, last_allowed)
SELECT key, burst - cost, t, true FROM args
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE
        WHEN LEAST($2::float8, b.tokens + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * $3::float8)
             >= $4::float8
        THEN LEAST($2::float8, b.tokens + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * $3::float8)
             - $4::float8
        ELSE LEAST($2::float8, b.tokens + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * $3::float8)
        END,
    last_allowed =
        LEAST($2::float8, b.tokens + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * $3::float8)
        >= $4::float8,
    as_of = EXCLUDED.as_of
RETURNING tokens, last_allowed
"""
_FORGET = ("DELETE FROM sec_rate_buckets"
           " WHERE as_of < clock_timestamp() - make_interval(secs => $1::float8)")


class PostgresBucketLimiter:
    """Token buckets in `sec_rate_buckets`, shared by every process on the database."""

    def __init__(self, pool: asyncpg.Pool, rate_per_s: float, burst: int, *,
                 forget_every: int = 1000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self._pool = pool
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._calls = itertools.count()
        self._forget_every = forget_every

    async def acquire(self, key: str, cost: float = 1.0) -> Decision:
        """Take `cost` tokens from `key`'s shared bucket if it has them."""
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the burst {self.burst}; it could never pass")
        if next(self._calls) % self._forget_every == self._forget_every - 1:
            # A bucket untouched for the time it takes to refill is full: forget it.
            await self._pool.execute(_FORGET, self.burst / self.rate_per_s + 60)
        row = await self._pool.fetchrow(_TAKE, key, self.burst, self.rate_per_s, cost)
        if row["last_allowed"]:
            return Decision(allowed=True)
        return Decision(allowed=False, retry_after_s=(cost - row["tokens"]) / self.rate_per_s)


class RateLimits:
    """The API's two limits: per client address (before authentication) and per key."""

    def __init__(self, per_key: Limiter, per_ip: Limiter) -> None:
        self.per_key = per_key
        self.per_ip = per_ip

    @classmethod
    def from_settings(
        cls, sec: SecuritySettings, clock: Callable[[], float] = time.monotonic,
        pool: asyncpg.Pool | None = None,
    ) -> RateLimits:
        """Limits with the configured rates and bursts: shared in Postgres when `pool` is given
        and `BEND_SECURITY__RATE_LIMIT_STORE` is `postgres` (the default), else per process."""
        if pool is not None and sec.rate_limit_store == "postgres":
            return cls(per_key=PostgresBucketLimiter(pool, sec.key_rate_per_s, sec.key_burst),
                       per_ip=PostgresBucketLimiter(pool, sec.ip_rate_per_s, sec.ip_burst))
        return cls(
            per_key=TokenBucketLimiter(sec.key_rate_per_s, sec.key_burst, clock=clock),
            per_ip=TokenBucketLimiter(sec.ip_rate_per_s, sec.ip_burst, clock=clock),
        )

    async def check_ip(self, client_ip: str) -> None:
        """Raise RateLimited if `client_ip` is over its limit."""
        _enforce(await self.per_ip.acquire(f"ip:{client_ip}"), "client address")

    async def check_principal(self, principal: Principal) -> None:
        """Raise RateLimited if the principal's key (or token subject) is over its limit."""
        key = f"key:{principal.key_id}" if principal.key_id else f"sub:{principal.subject}"
        _enforce(await self.per_key.acquire(f"{principal.project}/{key}"), "API key")


def _enforce(decision: Decision, scope: str) -> None:
    """Raise RateLimited for a refused decision."""
    if not decision.allowed:
        raise RateLimited(scope, decision.retry_after_s)

