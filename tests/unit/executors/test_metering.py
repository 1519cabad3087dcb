"""An agent attempt's budgets: stopped before a call that would go past one, failed after one."""

from __future__ import annotations

import pytest

from streams.executors.errors import BudgetExceeded
from streams.executors.metering import Meter


def test_a_call_within_budget_passes_and_the_next_is_checked_against_the_last() -> None:
    meter = Meter.of({"max_tokens": 250}, None)
    meter.before_call()  # nothing used yet: the first call always goes
    meter.after_call(100, 0.0)
    meter.before_call()  # 100 + at least 100 more <= 250
    meter.after_call(120, 0.0)
    with pytest.raises(BudgetExceeded) as caught:
        meter.before_call()  # 220 + at least 120 > 250
    assert "the step's budget.max_tokens of 250 is exceeded: 340 tokens used with the next " \
           "model call" in caught.value.message
    assert "the agent stopped before it" in caught.value.message
    assert not caught.value.retryable and caught.value.error_type == "BudgetExceeded"


def test_a_call_that_goes_past_the_budget_fails_the_attempt_after_it() -> None:
    meter = Meter.of({"max_cost_usd": 0.01}, None)
    with pytest.raises(BudgetExceeded, match=r"budget.max_cost_usd of \$0.01 is exceeded: "
                                             r"\$0.020000 used; the agent stopped after"):
        meter.after_call(10, 0.02)


def test_the_run_budget_counts_what_the_run_used_before_the_step() -> None:
    meter = Meter.of(None, {"max_tokens": 1000, "used_tokens": 950, "used_cost_usd": 0.1})
    with pytest.raises(BudgetExceeded, match="the run's budget.max_tokens of 1000 is exceeded: "
                                             "1010 tokens used"):
        meter.after_call(60, 0.0)


def test_without_budgets_nothing_is_stopped() -> None:
    meter = Meter.of(None, None)
    for _ in range(3):
        meter.before_call()
        meter.after_call(10**6, 100.0)
