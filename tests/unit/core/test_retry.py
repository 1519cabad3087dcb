"""Back-off math and retry decisions: exponential, capped, deterministic jitter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bend.core.nodes import RetryPolicy
from bend.core.retry import backoff_delay, may_retry

NO_JITTER = RetryPolicy(max_attempts=10, initial_interval="1s", backoff=2, max_interval="10s",
                        jitter=0)


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10),
                                                  (9, 10)])
def test_delays_grow_by_the_multiplier_up_to_the_cap(attempt: int, seconds: int) -> None:
    assert backoff_delay(NO_JITTER, "r", "s", attempt) == timedelta(seconds=seconds)


def test_jitter_is_the_same_for_the_same_run_step_and_attempt() -> None:
    policy = RetryPolicy(initial_interval="10s", jitter=0.5, max_interval="1h")
    assert backoff_delay(policy, "r", "s", 2) == backoff_delay(policy, "r", "s", 2)
    spread = {backoff_delay(policy, f"run-{i}", "s", 1) for i in range(20)}
    assert len(spread) > 10  # different runs do not retry in lockstep


@given(initial=st.integers(1, 60), backoff=st.floats(1, 5), cap=st.integers(1, 600),
       jitter=st.floats(0, 1), attempt=st.integers(1, 40), run=st.text(max_size=8))
def test_a_delay_stays_within_its_jitter_band_and_never_exceeds_the_cap(
        initial: int, backoff: float, cap: int, jitter: float, attempt: int, run: str) -> None:
    policy = RetryPolicy(initial_interval=f"{initial}s", backoff=backoff,
                         max_interval=f"{cap}s", jitter=jitter)
    delay = backoff_delay(policy, run, "step", attempt).total_seconds()
    base = min(initial * backoff ** (attempt - 1), cap)
    assert 0 <= delay <= cap + 0.001
    assert base * (1 - jitter) - 0.001 <= delay <= base * (1 + jitter) + 0.001


def test_may_retry_counts_the_first_attempt_against_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert may_retry(policy, "E", True, 1) and may_retry(policy, "E", True, 2)
    assert not may_retry(policy, "E", True, 3)


def test_may_retry_honours_retryable_retry_on_and_non_retryable() -> None:
    assert not may_retry(RetryPolicy(), "E", False, 1)
    assert not may_retry(RetryPolicy(non_retryable=("E",)), "E", True, 1)
    assert may_retry(RetryPolicy(retry_on=("E",)), "E", True, 1)
    assert not may_retry(RetryPolicy(retry_on=("E",)), "F", True, 1)
