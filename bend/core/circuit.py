"""A circuit breaker per external target, as a pure state machine; time arrives as an argument.

closed ──N consecutive failures──▶ open ──cool-down passed, next call──▶ half-open
half-open ──probe succeeds──▶ closed;  half-open ──probe fails──▶ open (a new cool-down)

Every function returns the new `Breaker` and, when the state changed, a `CircuitTransition`
value the edge can record as an event. Half-open lets exactly one probe through at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

__all__ = [
    "Breaker", "CircuitPolicy", "CircuitResult", "CircuitState", "CircuitTransition",
    "admit", "record_failure", "record_success", "release",
]


class CircuitState(str, Enum):
    """Where a breaker stands: calls flow (closed), are refused (open), or one probes
    (half_open)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When a breaker opens (`failure_threshold` consecutive failures) and for how long."""

    failure_threshold: int = 5
    cool_down: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.cool_down < timedelta(0):
            raise ValueError("cool_down must not be negative")


@dataclass(frozen=True, slots=True)
class Breaker:
    """One target's breaker: its state, failures in a row, and until when it stays open."""

    target: str
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    open_until: datetime | None = None
    probing: bool = False  # half-open: a probe call is in flight, others wait


@dataclass(frozen=True, slots=True)
class CircuitTransition:
    """A breaker changed state at `at`; `open_until` is set when it opened."""

    target: str
    from_state: CircuitState
    to_state: CircuitState
    at: datetime
    consecutive_failures: int
    open_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CircuitResult:
    """The breaker after a decision, whether the call may go ahead, and any transition."""

    breaker: Breaker
    allowed: bool = True
    transition: CircuitTransition | None = None


def _move(old: Breaker, new: Breaker, now: datetime, allowed: bool = True) -> CircuitResult:
    transition = None
    if new.state is not old.state:
        transition = CircuitTransition(
            target=old.target, from_state=old.state, to_state=new.state, at=now,
            consecutive_failures=new.consecutive_failures, open_until=new.open_until,
        )
    return CircuitResult(breaker=new, allowed=allowed, transition=transition)


def admit(breaker: Breaker, now: datetime) -> CircuitResult:
    """May a call to the target start now? Past an open breaker's cool-down it turns half-open."""
    match breaker.state:
        case CircuitState.CLOSED:
            return CircuitResult(breaker=breaker)
        case CircuitState.OPEN if breaker.open_until is not None and now >= breaker.open_until:
            probing = replace(breaker, state=CircuitState.HALF_OPEN, probing=True)
            return _move(breaker, probing, now)
        case CircuitState.OPEN:
            return CircuitResult(breaker=breaker, allowed=False)
        case CircuitState.HALF_OPEN if breaker.probing:
            return CircuitResult(breaker=breaker, allowed=False)
        case _:  # half-open with no probe in flight (the last probe was abandoned): probe again
            return CircuitResult(breaker=replace(breaker, probing=True))


def record_success(breaker: Breaker, now: datetime) -> CircuitResult:
    """The target answered well: failures reset and a half-open breaker closes."""
    if breaker.state is CircuitState.OPEN:
        # A call admitted before the breaker opened succeeded late; the cool-down still holds,
        # so the target is not flooded again on one lucky answer.
        return CircuitResult(breaker=breaker)
    closed = replace(breaker, state=CircuitState.CLOSED, consecutive_failures=0,
                     open_until=None, probing=False)
    return _move(breaker, closed, now)


def record_failure(breaker: Breaker, policy: CircuitPolicy, now: datetime) -> CircuitResult:
    """The target failed: count it; at the threshold (or on a failed probe) open until cool-down."""
    failures = breaker.consecutive_failures + 1
    opens = breaker.state is CircuitState.HALF_OPEN or failures >= policy.failure_threshold
    if breaker.state is CircuitState.OPEN:
        # A call admitted before the breaker opened failed late: count it, keep the cool-down.
        return CircuitResult(breaker=replace(breaker, consecutive_failures=failures))
    if not opens:
        return CircuitResult(breaker=replace(breaker, consecutive_failures=failures))
    opened = replace(breaker, state=CircuitState.OPEN, consecutive_failures=failures,
                     open_until=now + policy.cool_down, probing=False)
    return _move(breaker, opened, now)


def release(breaker: Breaker) -> CircuitResult:
    """A call ended without a verdict on the target (cancelled): let the next call probe."""
    return CircuitResult(breaker=replace(breaker, probing=False))
