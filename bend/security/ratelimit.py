"""In-process token-bucket rate limits per API key and per client address."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bend.security.errors import RateLimited
from bend.security.roles import Principal
from bend.settings import SecuritySettings

__all__ = ["Decision", "TokenBucketLimiter", "RateLimits"]


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


class RateLimits:
    """The API's two limits: per client address (before authentication) and per key."""

    def __init__(self, per_key: TokenBucketLimiter, per_ip: TokenBucketLimiter) -> None:
        self.per_key = per_key
        self.per_ip = per_ip

    @classmethod
    def from_settings(
        cls, sec: SecuritySettings, clock: Callable[[], float] = time.monotonic
    ) -> RateLimits:
        """Limits with the configured rates and bursts."""
        return cls(
            per_key=TokenBucketLimiter(sec.key_rate_per_s, sec.key_burst, clock=clock),
            per_ip=TokenBucketLimiter(sec.ip_rate_per_s, sec.ip_burst, clock=clock),
        )

    def check_ip(self, client_ip: str) -> None:
        """Raise RateLimited if `client_ip` is over its limit."""
        _enforce(self.per_ip.check(f"ip:{client_ip}"), "client address")

    def check_principal(self, principal: Principal) -> None:
        """Raise RateLimited if the principal's key (or token subject) is over its limit."""
        key = f"key:{principal.key_id}" if principal.key_id else f"sub:{principal.subject}"
        _enforce(self.per_key.check(f"{principal.project}/{key}"), "API key")


def _enforce(decision: Decision, scope: str) -> None:
    """Raise RateLimited for a refused decision."""
    if not decision.allowed:
        raise RateLimited(scope, decision.retry_after_s)

