"""A polling trigger's request budget and back-off, driven by a made-up clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.triggers.pacing import RequestBudget, next_backoff


def _poll(budget: RequestBudget, gaps: list[float]) -> list[float]:
    """When a poller that waits `wait_s` before each request, then `gap`, sends its requests."""
    now, sent = 0.0, []
    for gap in gaps:
        now += budget.wait_s(now)
        budget.sent(now)
        sent.append(now)
        now += gap
    return sent


@given(st.integers(1, 20), st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200))
def test_no_sixty_seconds_hold_more_requests_than_the_budget(
        per_minute: int, gaps: list[float]) -> None:
    sent = _poll(RequestBudget(per_minute), gaps)
    for i, start in enumerate(sent):
        in_window = [t for t in sent[i:] if t < start + 60.0]
        assert len(in_window) <= per_minute, (per_minute, sent)


@given(st.integers(1, 20), st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200))
def test_a_request_waits_only_while_the_last_minute_is_full(
        per_minute: int, gaps: list[float]) -> None:
    budget = RequestBudget(per_minute)
    now, sent = 0.0, []
    for gap in gaps:
        wait = budget.wait_s(now)
        recent = [t for t in sent if t + 60.0 - now > 0]
        assert (wait > 0) == (len(recent) >= per_minute)
        if wait:  # exactly until the oldest request that fills the minute leaves it
            assert abs(now + wait - (sorted(recent)[-per_minute] + 60.0)) < 1e-9
        now += wait
        budget.sent(now)
        sent.append(now)
        now += gap


def test_a_poller_failing_fast_is_held_to_its_budget() -> None:
    # Back-off of 0.2 s would poll 300 times a minute; 5 a minute are allowed.
    sent = _poll(RequestBudget(5), [0.2] * 12)
    assert sent[:5] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert sent[5:7] == pytest.approx([60.0, 60.2]) and sent[10] == pytest.approx(120.0)
    assert _poll(RequestBudget(None), [0.2] * 3) == [0.0, 0.2, 0.4]


def test_the_back_off_grows_by_its_multiplier_up_to_its_cap() -> None:
    waits, wait = [], 0.0
    for _ in range(6):
        wait = next_backoff(wait, 0.5, 2.0, 3.0)
        waits.append(wait)
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
