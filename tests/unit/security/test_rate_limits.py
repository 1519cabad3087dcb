"""Token buckets: a burst passes, the next request gets retry_after, refills with time."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bend.security import Principal, Role
from bend.security.errors import RateLimited
from bend.security.ratelimit import RateLimits, TokenBucketLimiter
from bend.settings import SecuritySettings


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_and_the_next_request_is_told_when_to_retry() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert all(limiter.check("k").allowed for _ in range(3))
    refused = limiter.check("k")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(0.5)  # one token at 2 per second


def test_tokens_refill_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate_per_s=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("k")
    clock.now += 0.5
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed
    clock.now += 3600  # a long pause refills to the burst, not to 7200
    assert sum(limiter.check("k").allowed for _ in range(10)) == 3


def test_keys_have_separate_buckets() -> None:
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=1, clock=Clock())
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed


def test_refused_requests_do_not_take_tokens() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=1, clock=clock)
    limiter.check("k")
    for _ in range(5):
        assert not limiter.check("k").allowed
    clock.now += 1.0
    assert limiter.check("k").allowed


def test_memory_stays_bounded_by_max_keys() -> None:
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=1, clock=Clock(), max_keys=100)
    for i in range(1000):
        limiter.check(f"ip-{i}")
    assert len(limiter) == 100


def test_concurrent_callers_never_get_more_than_the_burst() -> None:
    limiter = TokenBucketLimiter(rate_per_s=0.001, burst=50)  # real clock, nearly no refill
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            ok = limiter.check("shared").allowed
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(allowed) == 400 and sum(allowed) == 50


async def test_concurrent_tasks_never_get_more_than_the_burst() -> None:
    limiter = TokenBucketLimiter(rate_per_s=0.001, burst=20)

    async def one() -> bool:
        await asyncio.sleep(0)
        return limiter.check("shared").allowed

    results = await asyncio.gather(*(one() for _ in range(100)))
    assert sum(results) == 20


async def test_the_api_limits_raise_429_with_a_whole_seconds_retry_after() -> None:
    clock = Clock()
    sec = SecuritySettings(key_rate_per_s=0.4, key_burst=1, ip_rate_per_s=1.0, ip_burst=2)
    limits = RateLimits.from_settings(sec, clock=clock)
    principal = Principal(subject="key:k", project="acme", role=Role.VIEWER, key_id="k")
    await limits.check_principal(principal)
    with pytest.raises(RateLimited) as caught:
        await limits.check_principal(principal)
    assert caught.value.status == 429
    assert caught.value.retry_after_s == pytest.approx(2.5)
    assert caught.value.headers == {"Retry-After": "3"}
    await limits.check_ip("10.0.0.1")
    await limits.check_ip("10.0.0.1")
    with pytest.raises(RateLimited, match="client address"):
        await limits.check_ip("10.0.0.1")
    # The same key id in another project is another bucket.
    await limits.check_principal(Principal(subject="key:k", project="globex", role=Role.VIEWER,
                                     key_id="k"))


def test_a_cost_above_the_burst_is_refused_as_a_programming_error() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucketLimiter(rate_per_s=1.0, burst=2).check("k", cost=3)
