"""The executor's breakers per target: failures open them, transitions come out as values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bend.core.circuit import CircuitPolicy, CircuitState, CircuitTransition
from streams.executors.circuits import CircuitBreakers, target_of
from streams.executors.errors import CircuitOpen, TargetFailed, TargetRejected

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_target_is_the_scheme_host_and_port_of_a_url() -> None:
    assert target_of("http://127.0.0.1:8080/v1/chat?x=1") == "http://127.0.0.1:8080"
    assert target_of("https://API.example.com/x") == "https://api.example.com"


async def test_retryable_failures_open_the_breaker_and_later_calls_fail_fast() -> None:
    seen: list[CircuitTransition] = []
    breakers = CircuitBreakers(CircuitPolicy(2, timedelta(seconds=30)), on_transition=seen.append)
    clock, target = Clock(), "http://t"
    for _ in range(2):
        with pytest.raises(TargetFailed):
            async with breakers.guard(target, clock):
                raise TargetFailed("503")
    with pytest.raises(CircuitOpen) as err:
        async with breakers.guard(target, clock):
            pytest.fail("an open breaker let a call through")
    assert err.value.target == target and err.value.open_until == T0 + timedelta(seconds=30)
    assert err.value.retryable and "http://t" in err.value.message
    assert [(t.from_state, t.to_state) for t in seen] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert list(breakers.transitions) == seen


async def test_a_probe_after_the_cool_down_closes_the_breaker() -> None:
    breakers = CircuitBreakers(CircuitPolicy(1, timedelta(seconds=5)))
    clock = Clock()
    with pytest.raises(TargetFailed):
        async with breakers.guard("http://t", clock):
            raise TargetFailed("down")
    clock.now += timedelta(seconds=5)
    async with breakers.guard("http://t", clock):
        pass
    assert breakers.breaker("http://t").state is CircuitState.CLOSED
    assert [t.to_state for t in breakers.transitions] == [
        CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


async def test_a_4xx_means_the_target_is_up_and_resets_its_failures() -> None:
    breakers = CircuitBreakers(CircuitPolicy(2))
    clock = Clock()
    with pytest.raises(TargetFailed):
        async with breakers.guard("http://t", clock):
            raise TargetFailed("503")
    with pytest.raises(TargetRejected):
        async with breakers.guard("http://t", clock):
            raise TargetRejected("404")
    assert breakers.breaker("http://t").consecutive_failures == 0


async def test_breakers_of_different_targets_are_independent() -> None:
    breakers = CircuitBreakers(CircuitPolicy(1))
    with pytest.raises(TargetFailed):
        async with breakers.guard("http://a", Clock()):
            raise TargetFailed("down")
    async with breakers.guard("http://b", Clock()):
        pass
    assert breakers.breaker("http://a").state is CircuitState.OPEN
    assert breakers.breaker("http://b").state is CircuitState.CLOSED
