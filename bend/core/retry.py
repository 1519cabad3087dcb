"""Retry decisions and back-off: exponential, capped, with jitter that replays exactly."""

from __future__ import annotations

from datetime import timedelta

from bend.core.durations import parse_duration
from bend.core.ids import unit_fraction
from bend.core.nodes import RetryPolicy

__all__ = ["backoff_delay", "may_retry"]


def may_retry(policy: RetryPolicy, error_type: str, retryable: bool, attempt: int) -> bool:
    """Whether attempt `attempt`, failed with `error_type`, gets another try under `policy`."""
    if not retryable or attempt >= policy.max_attempts:
        return False
    if error_type in policy.non_retryable:
        return False
    return policy.retry_on is None or error_type in policy.retry_on


def backoff_delay(policy: RetryPolicy, run_id: str, step_id: str, attempt: int) -> timedelta:
    """How long to wait after failed attempt `attempt` (1-based) before the next one.

    initial_interval * backoff^(attempt-1), capped at max_interval, then moved by up to
    ±jitter of itself; the jitter comes from a hash of (run_id, step_id, attempt), so the same
    failure always waits the same time, and the result never exceeds max_interval.
    """
    initial = parse_duration(policy.initial_interval)
    cap = parse_duration(policy.max_interval)
    base_s = min(initial.total_seconds() * policy.backoff ** max(attempt - 1, 0),
                 cap.total_seconds())
    spread = policy.jitter * (2 * unit_fraction(run_id, step_id, attempt) - 1)
    delay_s = min(max(base_s * (1 + spread), 0.0), cap.total_seconds())
    return timedelta(milliseconds=round(delay_s * 1000))
