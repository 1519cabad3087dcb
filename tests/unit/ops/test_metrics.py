"""The metric helpers: decisions counted once by outcome, LLM cost, lag series, breakers."""

from __future__ import annotations

import gc
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from bend.core.circuit import CircuitState
from bend.core.commands import (
    CancelRun, Command, CompleteStep, FailStep, FireTimer, RecordLlmCall, RecordToolCall,
    StartRun,
)
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, load_definition
from bend.core.state import RunState
from bend.ops.metrics import (
    consumer_lag, llm_cost, observe_decision, observe_llm_calls, price_of, set_consumer_lag,
    set_projection_lag, watch_circuits,
)
from bend.settings import DEFAULT_LLM_PRICES, LlmPrice, OpsSettings

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def value(name: str, **labels: str) -> float:
    """A sample's current value (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Driven:
    """One run decided the orchestrator's way, each accepted decision observed."""

    def __init__(self, steps: str, retry: str = "") -> None:
        self.name = f"wf_{uuid.uuid4().hex[:8]}"
        text = f"name: {self.name}\nsteps:\n{steps}"
        self.definition = definition_json(load_definition(text))
        self.state: RunState | None = None
        self.now = T0
        self.n = 0

    def env(self) -> dict:
        self.n += 1
        return {"event_id": f"c{self.n}", "run_id": "r1", "workflow_id": "wf",
                "occurred_at": self.now}

    def send(self, cmd: Command) -> Accepted:
        decision = decide(self.state, cmd, self.now)
        assert isinstance(decision, Accepted), decision
        assert decision.state is not None
        observe_decision(self.state, decision.state, decision.events)
        self.state = decision.state
        return decision

    def start(self) -> Accepted:
        return self.send(StartRun(**self.env(), input={}, definition=self.definition))

    def attempt(self, step_id: str) -> int:
        assert self.state is not None
        return self.state.step(step_id).attempt

    def timer(self, purpose: str) -> str:
        assert self.state is not None
        [(timer_id, fire_at)] = [(t.timer_id, t.fire_at) for t in self.state.timers.values()
                                 if t.purpose == purpose]
        self.now = max(self.now, fire_at)
        return timer_id


TOOL = "  - {id: a, type: tool, component: noop@1, inputs: {}%s}\n"
AFTER = "  - {id: b, type: transform, expression: \"'done'\", after: [a]}\n"


def test_a_run_is_counted_started_and_completed_once_with_its_steps_duration_and_overhead(
        ) -> None:
    run = Driven(TOOL % "" + AFTER)
    duration = value("bend_step_duration_seconds_sum", node_type="tool", outcome="succeeded")
    durations = value("bend_step_duration_seconds_count", node_type="tool", outcome="succeeded")
    overhead = value("bend_step_overhead_seconds_sum", node_type="tool")
    overheads = value("bend_step_overhead_seconds_count", node_type="tool")
    run.start()
    assert value("bend_runs_started_total", workflow=run.name) == 1
    # The executor took the task 0.5 s after it was scheduled and ran it for 1.5 s.
    run.now = T0 + timedelta(seconds=2)
    run.send(CompleteStep(**run.env(), step_id="a", attempt=1, output=1, duration_ms=1500))
    assert value("bend_runs_finished_total", workflow=run.name, outcome="completed") == 1
    assert value("bend_runs_started_total", workflow=run.name) == 1
    assert value("bend_step_duration_seconds_count", node_type="tool",
                 outcome="succeeded") == durations + 1
    assert value("bend_step_duration_seconds_sum", node_type="tool",
                 outcome="succeeded") == pytest.approx(duration + 1.5)
    assert value("bend_step_overhead_seconds_count", node_type="tool") == overheads + 1
    assert value("bend_step_overhead_seconds_sum", node_type="tool") == \
        pytest.approx(overhead + 0.5)


def test_a_retry_and_a_timeout_are_counted_by_node_type() -> None:
    run = Driven(TOOL % ", timeout: 5s, retry: {max_attempts: 2, initial_interval: 1s, "
                        "jitter: 0}")
    retries = value("bend_step_retries_total", node_type="tool")
    timeouts = value("bend_step_timeouts_total", node_type="tool")
    timed_out = value("bend_step_duration_seconds_count", node_type="tool", outcome="timed_out")
    failed = value("bend_step_duration_seconds_count", node_type="tool", outcome="failed")
    run.start()
    run.now += timedelta(seconds=1)
    run.send(FailStep(**run.env(), step_id="a", attempt=1, error_type="Boom", message="x",
                      retryable=True))
    assert value("bend_step_retries_total", node_type="tool") == retries + 1
    assert value("bend_step_duration_seconds_count", node_type="tool",
                 outcome="failed") == failed + 1
    run.send(FireTimer(**run.env(), timer_id=run.timer("retry")))
    run.send(FireTimer(**run.env(), timer_id=run.timer("step_timeout")))
    assert value("bend_step_timeouts_total", node_type="tool") == timeouts + 1
    assert value("bend_step_duration_seconds_count", node_type="tool",
                 outcome="timed_out") == timed_out + 1
    assert value("bend_runs_finished_total", workflow=run.name, outcome="failed") == 1


def test_a_cancelled_run_is_counted_cancelled_and_nothing_else() -> None:
    run = Driven(TOOL % "")
    run.start()
    run.send(CancelRun(**run.env(), reason="no", requested_by="me"))
    assert value("bend_runs_finished_total", workflow=run.name, outcome="cancelled") == 1
    assert value("bend_runs_finished_total", workflow=run.name, outcome="completed") == 0


def test_a_model_is_priced_by_its_own_entry_or_its_longest_prefix_and_unknown_ones_cost_0(
        ) -> None:
    prices = OpsSettings(llm_prices={"house-model": LlmPrice(input_per_mtok=1,
                                                             output_per_mtok=4)}).prices()
    assert price_of("gpt-4o-mini-2024-07-18", prices) == DEFAULT_LLM_PRICES["gpt-4o-mini"]
    assert price_of("gpt-4o-2024-08-06", prices) == DEFAULT_LLM_PRICES["gpt-4o"]
    assert price_of("no-such-model", prices) is None
    assert llm_cost("no-such-model", 1000, 1000, prices) == 0.0
    assert llm_cost("house-model-v2", 2_000_000, 500_000, prices) == pytest.approx(2 + 2)
    assert llm_cost("gpt-4o", 1_000_000, 1_000_000, prices) == pytest.approx(2.5 + 10)


def test_an_override_replaces_a_default_price_and_keeps_the_others() -> None:
    prices = OpsSettings(llm_prices={"gpt-4o": LlmPrice(input_per_mtok=0,
                                                        output_per_mtok=0)}).prices()
    assert llm_cost("gpt-4o", 10**6, 10**6, prices) == 0
    assert prices["gpt-4.1"] == DEFAULT_LLM_PRICES["gpt-4.1"]


def test_llm_calls_count_calls_tokens_and_cost_and_ignore_other_records() -> None:
    model = f"gpt-4o-test-{uuid.uuid4().hex[:6]}"
    env = {"event_id": "e", "run_id": "r", "workflow_id": "w", "occurred_at": T0,
           "step_id": "s", "call_index": 0}
    records = [RecordLlmCall(**env, model=model, prompt_tokens=1000, completion_tokens=200,
                             latency_ms=250),
               RecordToolCall(**env, tool_call_id="t", tool_name="web_search"),
               RecordLlmCall(**env, model=model, prompt_tokens=10, completion_tokens=0)]
    observe_llm_calls(records, DEFAULT_LLM_PRICES)
    assert value("bend_llm_calls_total", model=model) == 2
    assert value("bend_llm_tokens_total", model=model, kind="prompt") == 1010
    assert value("bend_llm_tokens_total", model=model, kind="completion") == 200
    assert value("bend_llm_cost_usd_total", model=model) == \
        pytest.approx((1010 * 2.5 + 200 * 10) / 1e6)
    assert value("bend_llm_call_duration_seconds_sum", model=model) == pytest.approx(0.25)


def test_consumer_lag_is_published_per_partition_and_a_lost_partition_disappears() -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    set_consumer_lag(group, {("t", 0): 5, ("t", 1): 0})
    assert value("bend_consumer_lag", group=group, topic="t", partition="0") == 5
    assert value("bend_consumer_assigned_partitions", group=group) == 2
    set_consumer_lag(group, {("t", 1): 3})
    assert REGISTRY.get_sample_value("bend_consumer_lag",
                                     {"group": group, "topic": "t", "partition": "0"}) is None
    assert value("bend_consumer_lag", group=group, topic="t", partition="1") == 3
    assert value("bend_consumer_assigned_partitions", group=group) == 1


def test_consumer_lag_is_unknown_until_both_ends_are_known_and_never_negative() -> None:
    assert consumer_lag(None, 3) is None and consumer_lag(10, None) is None
    assert consumer_lag(10, 4) == 6
    assert consumer_lag(10, 12) == 0  # a position read before the highwater moved


def test_projection_lag_keeps_only_the_partitions_the_projector_owns() -> None:
    set_projection_lag({("p.runs", 0): 7, ("p.runs", 1): 0})
    set_projection_lag({("p.runs", 1): 2})
    assert REGISTRY.get_sample_value("bend_projection_lag",
                                     {"topic": "p.runs", "partition": "0"}) is None
    assert value("bend_projection_lag", topic="p.runs", partition="1") == 2
    set_projection_lag({})


def test_breakers_are_read_at_scrape_time_and_a_discarded_executor_stops_reporting() -> None:
    target = f"http://h-{uuid.uuid4().hex[:6]}:80"

    class Executor:
        def __init__(self) -> None:
            self.state = CircuitState.CLOSED

        def states(self) -> list[tuple[str, CircuitState]]:
            return [(target, self.state)]

    executor = Executor()
    watch_circuits(executor.states)
    assert value("bend_circuit_state", target=target) == 0
    executor.state = CircuitState.OPEN
    assert value("bend_circuit_state", target=target) == 2
    executor.state = CircuitState.HALF_OPEN
    assert value("bend_circuit_state", target=target) == 1
    del executor
    gc.collect()
    assert REGISTRY.get_sample_value("bend_circuit_state", {"target": target}) is None


def test_projection_lag_in_seconds_is_published_where_known_and_dropped_with_the_partition(
        ) -> None:
    set_projection_lag({("p.runs", 0): 7, ("p.runs", 1): 0}, {("p.runs", 0): 12.5,
                                                               ("p.runs", 1): 0.0})
    assert value("bend_projection_lag_seconds", topic="p.runs", partition="0") == 12.5
    assert value("bend_projection_lag_seconds", topic="p.runs", partition="1") == 0.0
    set_projection_lag({("p.runs", 1): 2})
    assert REGISTRY.get_sample_value("bend_projection_lag_seconds",
                                     {"topic": "p.runs", "partition": "0"}) is None
    set_projection_lag({})
