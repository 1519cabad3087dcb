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

__all__ = [
    "Decision", "Limiter", "PostgresBucketLimiter", "RateLimits", "SharedBuckets",
    "TokenBucketLimiter",
]


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


# One statement per request, for every bucket it spends (an address's and a key's): refill each
# for the time since its last request, take one token if it is there, and say whether it was.
# Rows of every replica meet here, under the row locks, so N replicas share one budget.
_TAKE = """
INSERT INTO sec_rate_buckets AS b (key, tokens, as_of, last_allowed, burst, rate)
SELECT a.key, a.burst - 1, clock_timestamp(), true, a.burst, a.rate
FROM unnest($1::text[], $2::float8[], $3::float8[]) AS a (key, burst, rate)
ORDER BY a.key
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE
        WHEN LEAST(EXCLUDED.burst, b.tokens
                   + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * EXCLUDED.rate) >= 1
        THEN LEAST(EXCLUDED.burst, b.tokens
                   + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * EXCLUDED.rate) - 1
        ELSE LEAST(EXCLUDED.burst, b.tokens
                   + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * EXCLUDED.rate) END,
    last_allowed = LEAST(EXCLUDED.burst, b.tokens
                         + EXTRACT(EPOCH FROM EXCLUDED.as_of - b.as_of) * EXCLUDED.rate) >= 1,
    as_of = EXCLUDED.as_of, burst = EXCLUDED.burst, rate = EXCLUDED.rate
RETURNING key, tokens, last_allowed
"""
_FORGET = ("DELETE FROM sec_rate_buckets"
           " WHERE as_of < clock_timestamp() - make_interval(secs => $1::float8)")


class SharedBuckets:
    """Token buckets in `sec_rate_buckets`, shared by every process on the database: one
    round trip takes a token from each bucket a request spends."""

    def __init__(self, pool: asyncpg.Pool, *, forget_every: int = 1000) -> None:
        self._pool = pool
        self._calls = itertools.count()
        self._forget_every = forget_every

    def limiter(self, rate_per_s: float, burst: int) -> PostgresBucketLimiter:
        """A limiter of this store's buckets with its own rate and burst."""
        return PostgresBucketLimiter(self, rate_per_s, burst)

    async def take(self, buckets: list[tuple[str, PostgresBucketLimiter]]) -> list[Decision]:
        """A token from each of `buckets` (key, its limiter), in one round trip."""
        if next(self._calls) % self._forget_every == self._forget_every - 1:
            # A bucket untouched for the time it takes to refill is full: forget it.
            await self._pool.execute(_FORGET,
                                     max(b.burst / b.rate_per_s for _, b in buckets) + 60)
        rows = await self._pool.fetch(_TAKE, [k for k, _ in buckets],
                                      [b.burst for _, b in buckets],
                                      [b.rate_per_s for _, b in buckets])
        by_key = {r["key"]: r for r in rows}
        out = []
        for key, limiter in buckets:
            row = by_key[key]
            out.append(Decision(allowed=True) if row["last_allowed"] else Decision(
                allowed=False, retry_after_s=(1 - row["tokens"]) / limiter.rate_per_s))
        return out


class PostgresBucketLimiter:
    """One kind of shared bucket (a rate and a burst) in a SharedBuckets store."""

    def __init__(self, store: SharedBuckets, rate_per_s: float, burst: int) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.store = store
        self.rate_per_s = rate_per_s
        self.burst = float(burst)

    async def acquire(self, key: str, cost: float = 1.0) -> Decision:
        """Take a token from `key`'s shared bucket if it has one."""
        if cost != 1.0:
            raise ValueError("shared buckets take one token a request")
        return (await self.store.take([(key, self)]))[0]


class RateLimits:
    """The API's two limits: per client address (before authentication) and per key."""

    def __init__(self, per_key: Limiter, per_ip: Limiter,
                 local_ip: TokenBucketLimiter | None = None) -> None:
        self.per_key = per_key
        self.per_ip = per_ip
        # With shared buckets: this replica's own address bucket, checked before the key is
        # verified (it costs no round trip), so key guessing is throttled before that work.
        self.local_ip = local_ip

    @classmethod
    def from_settings(
        cls, sec: SecuritySettings, clock: Callable[[], float] = time.monotonic,
        pool: asyncpg.Pool | None = None,
    ) -> RateLimits:
        """Limits with the configured rates and bursts: shared in Postgres when `pool` is given
        and `BEND_SECURITY__RATE_LIMIT_STORE` is `postgres` (the default), else per process."""
        if pool is not None and sec.rate_limit_store == "postgres":
            store = SharedBuckets(pool)
            return cls(per_key=store.limiter(sec.key_rate_per_s, sec.key_burst),
                       per_ip=store.limiter(sec.ip_rate_per_s, sec.ip_burst),
                       local_ip=TokenBucketLimiter(sec.ip_rate_per_s, sec.ip_burst,
                                                   clock=clock))
        return cls(
            per_key=TokenBucketLimiter(sec.key_rate_per_s, sec.key_burst, clock=clock),
            per_ip=TokenBucketLimiter(sec.ip_rate_per_s, sec.ip_burst, clock=clock),
        )

    async def check_ip(self, client_ip: str, *, before_auth: bool = False) -> None:
        """Raise RateLimited if `client_ip` is over its limit. `before_auth`: a request whose
        `check_principal` follows, which spends the shared address bucket with the key's."""
        if before_auth and self.local_ip is not None:
            _enforce(self.local_ip.check(f"ip:{client_ip}"), "client address")
            return
        _enforce(await self.per_ip.acquire(f"ip:{client_ip}"), "client address")

    async def spend_ip(self, client_ip: str) -> None:
        """A request from `client_ip` that proved no identity still spends the address's shared
        bucket (it was checked only locally before): guesses count on every replica."""
        if self.local_ip is not None:
            await self.per_ip.acquire(f"ip:{client_ip}")

    async def check_principal(self, principal: Principal, client_ip: str | None = None) -> None:
        """Raise RateLimited if the principal's key (or token subject) is over its limit, and,
        after a `before_auth` address check, if `client_ip` is over the shared one: both in one
        round trip."""
        subject = f"key:{principal.key_id}" if principal.key_id else f"sub:{principal.subject}"
        key = f"{principal.project}/{subject}"
        if (self.local_ip is not None and client_ip is not None
                and isinstance(self.per_key, PostgresBucketLimiter)
                and isinstance(self.per_ip, PostgresBucketLimiter)
                and self.per_key.store is self.per_ip.store):
            ip_decision, key_decision = await self.per_key.store.take(
                [(f"ip:{client_ip}", self.per_ip), (key, self.per_key)])
            _enforce(ip_decision, "client address")
            _enforce(key_decision, "API key")
            return
        _enforce(await self.per_key.acquire(key), "API key")


def _enforce(decision: Decision, scope: str) -> None:
    """Raise RateLimited for a refused decision."""
    if not decision.allowed:
        raise RateLimited(scope, decision.retry_after_s)

