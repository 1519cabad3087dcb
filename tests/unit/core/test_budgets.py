"""LLM budgets in the core: usage folded from recorded calls, spent run budgets refuse agent work,
budgets below one call refused at definition time."""

from __future__ import annotations

import pytest
from core_harness import Run, wf
from hypothesis import given
from hypothesis import strategies as st

from bend.core.budgets import LlmUsage, budget_problems, min_call_tokens, overrun
from bend.core.commands import RecordLlmCall
from bend.core.definitions import load_definition
from bend.core.nodes import Budget
from bend.core.problems import InvalidDefinition
from bend.core.state import RunStatus, StepStatus

LLM = "    llm: {base_url: 'http://127.0.0.1:1/v1'}\n"
TWO_AGENTS = ("  - {id: a, type: agent, model: m, prompt: 'first one', llm: {base_url: 'http://h/v1'}, "
              "retry: {max_attempts: 3}}\n"
              "  - {id: b, type: agent, model: m, prompt: 'second', after: [a], "
              "llm: {base_url: 'http://h/v1'}}\n")


def _call(run: Run, step_id: str, tokens: int, cost: float = 0.0, index: int = 0) -> None:
    run.ok(RecordLlmCall(**run.envelope(), step_id=step_id, attempt=run.st(step_id).attempt,
                         call_index=index, model="m", prompt_tokens=tokens - 1,
                         completion_tokens=1, cost_usd=cost, provider="openai",
                         endpoint="http://h/v1", fallback=1))


@given(st.lists(st.tuples(st.integers(0, 10_000), st.floats(0, 1)), max_size=20))
def test_usage_adds_up_every_call(calls: list[tuple[int, float]]) -> None:
    usage = LlmUsage()
    for tokens, cost in calls:
        usage = usage.plus(tokens, cost)
    assert usage.calls == len(calls)
    assert usage.tokens == sum(t for t, _ in calls)
    assert usage.cost_usd == pytest.approx(sum(c for _, c in calls))


@given(st.integers(1, 1000), st.integers(0, 2000))
def test_a_token_budget_is_exceeded_only_past_its_limit(limit: int, used: int) -> None:
    over = overrun(Budget(max_tokens=limit), used, 0.0)
    assert (over is not None) == (used > limit)
    if over is not None:
        assert over.limit == "max_tokens"
        assert f"budget.max_tokens of {limit}" in over.text("the run's")
        assert f"{used} tokens used" in over.text("the run's")


def test_a_cost_budget_names_its_figures() -> None:
    over = overrun(Budget(max_cost_usd=0.01), 10, 0.0123)
    assert over is not None and over.limit == "max_cost_usd"
    assert over.text("the step's") == ("the step's budget.max_cost_usd of $0.01 is exceeded: "
                                       "$0.012300 used")
    assert overrun(None, 10**9, 10.0) is None


def test_a_budget_needs_a_limit() -> None:
    with pytest.raises(InvalidDefinition, match="budget needs `max_tokens`"):
        load_definition(wf(f"  - id: a\n    type: agent\n    model: m\n    prompt: hi\n{LLM}"
                           "    budget: {}\n"))


def test_recorded_calls_add_up_in_the_run_state() -> None:
    run = Run.of(wf(TWO_AGENTS))
    run.start()
    _call(run, "a", 100, 0.5)
    _call(run, "a", 50, 0.25, index=1)
    assert run.state is not None
    assert run.state.usage == LlmUsage(calls=2, tokens=150, cost_usd=0.75)


def test_an_agent_step_carries_the_runs_budget_and_what_the_run_used() -> None:
    run = Run.of(wf(TWO_AGENTS, "budget: {max_tokens: 1000, max_cost_usd: 2}\n"))
    run.start()
    assert run.st("a").input["run_budget"] == {"max_tokens": 1000, "max_cost_usd": 2.0,
                                               "used_tokens": 0, "used_cost_usd": 0.0}
    _call(run, "a", 400, 0.5)
    run.complete("a", {"answer": "x"})
    assert run.st("b").input["run_budget"]["used_tokens"] == 400
    assert run.st("b").input["run_budget"]["used_cost_usd"] == 0.5


def test_no_agent_work_is_scheduled_once_the_runs_budget_is_exceeded() -> None:
    run = Run.of(wf(TWO_AGENTS, "budget: {max_tokens: 300}\n"))
    run.start()
    _call(run, "a", 400)
    decision = run.complete("a", {"answer": "x"})
    assert run.types(decision)[-2:] == ["StepFailed:b", "RunFailed:b"]
    assert decision.tasks() == ()
    b = run.st("b")
    assert b.status is StepStatus.FAILED and b.error is not None
    assert b.error.error_type == "BudgetExceeded" and not b.error.retryable
    assert "the run's budget.max_tokens of 300 is exceeded: 400 tokens used" in b.error.message
    assert run.state is not None and run.state.status is RunStatus.FAILED


def test_a_retry_of_an_agent_step_is_refused_once_the_runs_budget_is_exceeded() -> None:
    run = Run.of(wf(TWO_AGENTS, "budget: {max_cost_usd: 0.1}\n"))
    run.start()
    _call(run, "a", 10, 0.2)
    run.fail("a", "LlmUnavailable", retryable=True)
    decision = run.fire("retry", "a")
    assert run.types(decision)[-2:] == ["StepFailed:a", "RunFailed:a"]
    assert run.st("a").error is not None
    assert "budget.max_cost_usd of $0.1 is exceeded" in run.st("a").error.message


def test_without_a_run_budget_agent_steps_carry_none() -> None:
    run = Run.of(wf(TWO_AGENTS))
    run.start()
    assert "run_budget" not in run.st("a").input


def test_a_token_budget_below_one_calls_prompt_is_refused() -> None:
    steps = (f"  - id: a\n    type: agent\n    model: m\n{LLM}"
             "    prompt: 'Summarise these ${input.n} pages in five short bullet points'\n"
             "    budget: {max_tokens: 5}\n")
    with pytest.raises(InvalidDefinition) as caught:
        load_definition(wf(steps))
    [problem] = caught.value.problems
    assert problem.location == "steps[0].budget.max_tokens"
    assert "at least 8 tokens" in problem.message


def test_a_run_token_budget_below_a_steps_prompt_is_refused() -> None:
    steps = f"  - id: a\n    type: agent\n    model: m\n    prompt: 'one two three'\n{LLM}"
    with pytest.raises(InvalidDefinition, match="budget.max_tokens"):
        load_definition(wf(steps, "budget: {max_tokens: 2}\n"))


def test_a_cost_budget_below_one_call_is_refused_where_the_model_is_priced() -> None:
    steps = f"  - id: a\n    type: agent\n    model: big\n    prompt: 'one two three'\n{LLM}" \
            "    budget: {max_cost_usd: 0.00001}\n"
    defn = load_definition(wf(steps))
    step = defn.steps[0]
    assert min_call_tokens(step) == 4  # type: ignore[arg-type]
    [problem] = budget_problems(defn, lambda model: (10.0, 30.0) if model == "big" else None)
    assert problem.location == "steps[0].budget.max_cost_usd"
    assert "$0.00006" in problem.message
    assert budget_problems(defn, lambda model: None) == []
    assert budget_problems(defn, lambda model: (0.1, 0.1)) == []
