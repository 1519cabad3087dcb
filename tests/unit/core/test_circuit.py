"""The circuit breaker state machine: every transition, and a model check over random calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bend.core.circuit import (
    Breaker, CircuitPolicy, CircuitState, admit, record_failure, record_success, release,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
POLICY = CircuitPolicy(failure_threshold=3, cool_down=timedelta(seconds=10))
CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def opened(at: datetime = T0) -> Breaker:
    """A breaker that just opened at `at`."""
    b = Breaker(target="http://t")
    for _ in range(POLICY.failure_threshold):
        b = record_failure(b, POLICY, at).breaker
    return b


def probing() -> Breaker:
    """A half-open breaker with its probe in flight."""
    return admit(opened(), T0 + POLICY.cool_down).breaker


def test_a_new_breaker_is_closed_and_admits_calls() -> None:
    result = admit(Breaker(target="http://t"), T0)
    assert result.allowed and result.breaker.state is CLOSED and result.transition is None


def test_failures_below_the_threshold_keep_the_breaker_closed() -> None:
    b = Breaker(target="http://t")
    for n in range(1, POLICY.failure_threshold):
        result = record_failure(b, POLICY, T0)
        b = result.breaker
        assert b.state is CLOSED and b.consecutive_failures == n and result.transition is None
    assert admit(b, T0).allowed


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    b = record_failure(record_failure(Breaker(target="http://t"), POLICY, T0).breaker,
                       POLICY, T0).breaker
    result = record_success(b, T0)
    assert result.breaker.consecutive_failures == 0 and result.transition is None
    assert record_failure(result.breaker, POLICY, T0).breaker.state is CLOSED


def test_the_threshold_th_consecutive_failure_opens_the_breaker_until_the_cool_down_ends() -> None:
    b = Breaker(target="http://t")
    for _ in range(POLICY.failure_threshold - 1):
        b = record_failure(b, POLICY, T0).breaker
    result = record_failure(b, POLICY, T0)
    assert result.breaker.state is OPEN
    assert result.breaker.open_until == T0 + POLICY.cool_down
    t = result.transition
    assert t is not None and (t.from_state, t.to_state) == (CLOSED, OPEN)
    assert t.at == T0 and t.open_until == T0 + POLICY.cool_down and t.consecutive_failures == 3


def test_an_open_breaker_refuses_calls_until_its_cool_down_ends() -> None:
    b = opened()
    just_before = T0 + POLICY.cool_down - timedelta(microseconds=1)
    result = admit(b, just_before)
    assert not result.allowed and result.breaker == b and result.transition is None


def test_after_the_cool_down_one_call_goes_through_as_a_half_open_probe() -> None:
    result = admit(opened(), T0 + POLICY.cool_down)
    assert result.allowed and result.breaker.state is HALF and result.breaker.probing
    t = result.transition
    assert t is not None and (t.from_state, t.to_state) == (OPEN, HALF)


def test_a_half_open_breaker_refuses_other_calls_while_its_probe_runs() -> None:
    result = admit(probing(), T0 + POLICY.cool_down)
    assert not result.allowed and result.transition is None


def test_a_successful_probe_closes_the_breaker() -> None:
    result = record_success(probing(), T0 + timedelta(seconds=11))
    assert result.breaker.state is CLOSED and result.breaker.consecutive_failures == 0
    assert result.breaker.open_until is None and not result.breaker.probing
    t = result.transition
    assert t is not None and (t.from_state, t.to_state) == (HALF, CLOSED)


def test_a_failed_probe_opens_the_breaker_again_for_a_new_cool_down() -> None:
    at = T0 + timedelta(seconds=12)
    result = record_failure(probing(), POLICY, at)
    assert result.breaker.state is OPEN and result.breaker.open_until == at + POLICY.cool_down
    t = result.transition
    assert t is not None and (t.from_state, t.to_state) == (HALF, OPEN)


def test_an_abandoned_probe_lets_the_next_call_probe_without_a_transition() -> None:
    freed = release(probing()).breaker
    assert freed.state is HALF and not freed.probing
    result = admit(freed, T0 + POLICY.cool_down)
    assert result.allowed and result.breaker.probing and result.transition is None


def test_a_late_success_does_not_close_an_open_breaker_before_its_cool_down() -> None:
    b = opened()
    result = record_success(b, T0 + timedelta(seconds=1))
    assert result.breaker == b and result.transition is None


def test_a_late_failure_counts_but_keeps_the_open_breakers_cool_down() -> None:
    b = opened()
    result = record_failure(b, POLICY, T0 + timedelta(seconds=5))
    assert result.breaker.state is OPEN and result.breaker.open_until == b.open_until
    assert result.breaker.consecutive_failures == b.consecutive_failures + 1
    assert result.transition is None


def test_a_threshold_of_one_opens_on_the_first_failure() -> None:
    result = record_failure(Breaker(target="http://t"), CircuitPolicy(failure_threshold=1), T0)
    assert result.breaker.state is OPEN


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"cool_down": timedelta(-1)}])
def test_a_policy_that_could_never_work_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CircuitPolicy(**kwargs)


calls = st.lists(st.tuples(st.sampled_from(["ok", "fail", "cancel"]), st.integers(0, 15)),
                 max_size=60)


@given(calls)
def test_the_breaker_agrees_with_a_simple_model_over_any_call_sequence(seq: list) -> None:
    """Calls arrive at increasing times; a refused call reports nothing, like the executor."""
    b, now = Breaker(target="http://t"), T0
    failures, open_until, state = 0, None, CLOSED
    for verdict, gap in seq:
        now += timedelta(seconds=gap)
        result = admit(b, now)
        b = result.breaker
        if state is OPEN and now >= open_until:
            state = HALF
        # Each call reports before the next starts, so a half-open breaker has no probe out.
        assert result.allowed == (state is not OPEN)
        if not result.allowed:
            continue
        if verdict == "ok":
            b, failures, state, open_until = record_success(b, now).breaker, 0, CLOSED, None
        elif verdict == "fail":
            b = record_failure(b, POLICY, now).breaker
            failures += 1
            if state is HALF or failures >= POLICY.failure_threshold:
                state, open_until = OPEN, now + POLICY.cool_down
        else:
            b = release(b).breaker
        assert (b.state, b.consecutive_failures, b.open_until) == (state, failures, open_until)
        assert not b.probing
