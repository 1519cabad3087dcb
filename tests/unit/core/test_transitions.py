"""The transition tables, pair by pair: apply accepts exactly what the tables allow."""

from __future__ import annotations

import dataclasses
import itertools
import typing
from dataclasses import MISSING, replace
from typing import Any

import pytest
from core_harness import T0

from bend.core.apply import apply
from bend.core.definitions import definition_json, load_definition
from bend.core.events import EVENT_TYPES, Event, StepEnding
from bend.core.frozen import FrozenMap
from bend.core.graph import compile_definition
from bend.core.state import KeptSignal, RunState, RunStatus, StepState, StepStatus, Timer
from bend.core.transitions import (
    RUN_RULES, STEP_ENDINGS, STEP_EVENT_TYPES, STEP_RULES, IllegalTransition, run_target,
    step_target,
)

DEFN = definition_json(load_definition(
    "name: t\nsteps: [{id: s, type: tool, component: web_search@1}]\n"))
RUN_STATUSES: list[RunStatus | None] = [None, *RunStatus]


def event(name: str, seq: int, step: StepState | None = None, **over: Any) -> Event:
    """A well-formed event of type `name` for run r, step s (fitting `step`'s attempt)."""
    attempt = max(step.attempt, 1) if step is not None else 1
    fields: dict[str, Any] = {
        "event_id": f"e{seq}", "run_id": "r", "workflow_id": "wf", "seq": seq,
        "occurred_at": T0, "causation_id": f"c{seq}",
    }
    per_type: dict[str, dict[str, Any]] = {
        "RunRequested": {"definition": DEFN, "input": {}},
        "RunFailed": {"error_type": "E", "message": "m"},
        "StepScheduled": {"step_id": "s", "node_type": "tool",
                          "attempt": (step.attempt + 1) if step is not None else 1},
        "StepStarted": {"step_id": "s", "attempt": attempt},
        "StepSucceeded": {"step_id": "s", "attempt": attempt},
        "StepFailed": {"step_id": "s", "attempt": attempt, "error_type": "E", "message": "m"},
        "StepTimedOut": {"step_id": "s", "attempt": attempt},
        "StepRetryScheduled": {"step_id": "s", "next_attempt": attempt + 1, "retry_at": T0,
                               "delay_ms": 0},
        "StepSkipped": {"step_id": "s"},
        "StepCancelled": {"step_id": "s"},
        "TimerSet": {"timer_id": "t-new", "purpose": "delay", "fire_at": T0},
        "TimerFired": {"timer_id": "t-pending", "purpose": "delay"},
        "AgentLlmCallRecorded": {"step_id": "s", "attempt": attempt, "call_index": 0,
                                 "model": "m"},
        "AgentToolCallRecorded": {"step_id": "s", "attempt": attempt, "call_index": 0,
                                  "tool_call_id": "t", "tool_name": "x"},
        "ApprovalDecided": {"step_id": "s", "attempt": attempt, "approved": True},
        "SignalDelivered": {"step_id": "s", "attempt": attempt, "name": "x", "signal_id": "x"},
        "ToolApprovalRequested": {"step_id": "s", "attempt": attempt, "tool_call_id": "c",
                                  "tool_name": "x@1"},
        "StepResumed": {"step_id": "s", "node_type": "agent", "attempt": attempt},
        "WorkflowRegistered": {"name": "n"},
        "TriggerFired": {"trigger_id": "t", "trigger_type": "cron", "dedupe_key": "k"},
        "TriggerRegistered": {"trigger_id": "t", "trigger_type": "schedule"},
        "TriggerUpdated": {"trigger_id": "t"},
        "TriggerRemoved": {"trigger_id": "t"},
        "ComponentRegistered": {"name": "c", "version": "1"},
        "DeadLettered": {"source_topic": "x", "source_partition": 0, "source_offset": 0,
                         "error_type": "E", "reason": "r"},
    }
    fields.update(per_type.get(name, {}))
    fields.update(over)
    cls = EVENT_TYPES[name]
    for f in dataclasses.fields(cls):  # events added later: any value of the field's type
        if f.name not in fields and f.default is MISSING and f.default_factory is MISSING:
            fields[f.name] = _DUMMIES.get(str(f.type).split(" |")[0], "x")
    return cls(**fields)


_DUMMIES: dict[str, Any] = {"int": 0, "bool": False, "bytes": b"", "datetime": T0}


def run_in(status: RunStatus, step: StepState | None = None) -> RunState:
    """A run of DEFN at `status` (seq 5), holding `step` and a pending timer t-pending."""
    defn, plan = compile_definition(DEFN)
    steps = FrozenMap({"s": step}) if step is not None else FrozenMap()
    open_ids = frozenset({"s"}) if step is not None and step.status.open else frozenset()
    return RunState(run_id="r", workflow_id="wf", status=status, seq=5, definition=defn,
                    plan=plan, steps=steps, open_ids=open_ids, signals=(KeptSignal("x", "x"),),
                    timers=FrozenMap({"t-pending": Timer("t-pending", "delay", T0)}))


def step_in(status: StepStatus) -> StepState | None:
    """Step s at `status` (attempt 1 once begun); None for pending (no record yet)."""
    if status is StepStatus.PENDING:
        return None
    return StepState(step_id="s", status=status, node_type="tool", attempt=1)


@pytest.mark.parametrize(("status", "name"), list(itertools.product(RUN_STATUSES, EVENT_TYPES)))
def test_apply_takes_a_run_event_exactly_when_the_run_table_allows_it(
        status: RunStatus | None, name: str) -> None:
    rule = RUN_RULES.get(name)
    allowed = rule is not None and status in rule.from_states
    # Steps: a step event needs a step that may take it; the run table is what is under test.
    step_status = next((s for s in StepStatus if name in STEP_RULES
                        and s in STEP_RULES[name].from_states), None)
    step = step_in(step_status) if step_status is not None else None
    if name in ("RunCompleted", "RunFailed", "RunCancelled"):
        step = None  # a run finishes with no open step
    state = run_in(status, step) if status is not None else None
    ev = event(name, 1 if state is None else state.seq + 1, step)
    if allowed:
        new = apply(state, ev)
        assert new.status == (rule.to_state or status)
        assert new.seq == ev.seq
    else:
        with pytest.raises(IllegalTransition):
            apply(state, ev)


@pytest.mark.parametrize(("status", "name"),
                         list(itertools.product(StepStatus, sorted(STEP_EVENT_TYPES))))
def test_apply_takes_a_step_event_exactly_when_the_step_table_allows_it(
        status: StepStatus, name: str) -> None:
    step = step_in(status)
    state = run_in(RunStatus.RUNNING, step)
    ev = event(name, state.seq + 1, step)
    rule = STEP_RULES[name]
    if status in rule.from_states:
        new = apply(state, ev)
        assert new.step("s").status is (rule.to_state or status)
    else:
        with pytest.raises(IllegalTransition, match=f"when the step is {status.value}"):
            apply(state, ev)


@pytest.mark.parametrize(("status", "name"), list(itertools.product(RUN_STATUSES, EVENT_TYPES)))
def test_run_target_follows_the_table(status: RunStatus | None, name: str) -> None:
    rule = RUN_RULES.get(name)
    if rule is not None and status in rule.from_states:
        assert run_target(status, name) is rule.to_state
    else:
        with pytest.raises(ValueError):
            run_target(status, name)


@pytest.mark.parametrize(("status", "name"), list(itertools.product(StepStatus, EVENT_TYPES)))
def test_step_target_follows_the_table(status: StepStatus, name: str) -> None:
    rule = STEP_RULES.get(name)
    if rule is not None and status in rule.from_states:
        assert step_target(status, name) is rule.to_state
    else:
        with pytest.raises(ValueError):
            step_target(status, name)


def test_every_finished_run_status_allows_no_event_at_all() -> None:
    for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
        assert not any(status in rule.from_states for rule in RUN_RULES.values())


def test_an_event_out_of_sequence_is_refused() -> None:
    state = run_in(RunStatus.RUNNING)
    for seq in (state.seq, state.seq + 2):
        with pytest.raises(IllegalTransition, match="seq should be 6"):
            apply(state, event("StepScheduled", seq))


def test_an_event_of_another_run_is_refused() -> None:
    state = run_in(RunStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="belongs to run other"):
        apply(state, event("StepScheduled", 6, run_id="other"))


def test_a_step_event_for_another_attempt_is_refused() -> None:
    step = replace(step_in(StepStatus.RUNNING), attempt=2)
    state = run_in(RunStatus.RUNNING, step)
    with pytest.raises(IllegalTransition, match="not the open attempt"):
        apply(state, event("StepSucceeded", 6, step, attempt=1))
    with pytest.raises(IllegalTransition, match="does not follow"):
        apply(run_in(RunStatus.RUNNING), event("StepScheduled", 6, attempt=2))


def test_a_run_cannot_finish_while_a_step_is_open() -> None:
    state = run_in(RunStatus.RUNNING, step_in(StepStatus.SCHEDULED))
    with pytest.raises(IllegalTransition, match="steps s are still open"):
        apply(state, event("RunCompleted", 6))


def test_timers_fire_once_and_are_set_once() -> None:
    state = run_in(RunStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="not pending"):
        apply(state, event("TimerFired", 6, timer_id="t-other"))
    with pytest.raises(IllegalTransition, match="already pending"):
        apply(state, event("TimerSet", 6, timer_id="t-pending"))


def test_a_step_ending_its_attempt_disarms_its_timers() -> None:
    step = step_in(StepStatus.RUNNING)
    state = run_in(RunStatus.RUNNING, step)
    state = apply(state, event("TimerSet", 6, timer_id="t-step", step_id="s",
                               purpose="step_timeout"))
    assert "t-step" in state.timers
    state = apply(state, event("StepSucceeded", 7, step))
    assert "t-step" not in state.timers and "t-pending" in state.timers


def test_a_finished_run_keeps_no_timers_and_remembers_the_commands_it_decided() -> None:
    state = apply(run_in(RunStatus.RUNNING), event("RunCancelled", 6))
    assert not state.timers and "c6" in state.decided


def test_a_requested_run_with_an_invalid_definition_folds_without_a_definition() -> None:
    state = apply(None, event("RunRequested", 1, definition={"name": "x", "steps": []}))
    assert state.status is RunStatus.REQUESTED and state.definition is None


def test_a_malformed_step_instance_id_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="not a step instance id"):
        apply(run_in(RunStatus.RUNNING), event("StepScheduled", 6, step_id="a b"))


def test_state_values_cannot_be_mutated() -> None:
    state = run_in(RunStatus.RUNNING, step_in(StepStatus.RUNNING))
    with pytest.raises(AttributeError):
        state.status = RunStatus.FAILED  # type: ignore[misc]
    with pytest.raises(TypeError):
        state.steps["x"] = state.step("s")  # type: ignore[index]
    assert state.steps.set("x", state.step("s")) is not state.steps and "x" not in state.steps


def test_the_step_ending_type_holds_exactly_the_events_step_endings_names() -> None:
    assert {cls.__name__ for cls in typing.get_args(StepEnding)} == set(STEP_ENDINGS)
    assert set(STEP_ENDINGS.values()) == {StepStatus.SUCCEEDED, StepStatus.FAILED,
                                          StepStatus.TIMED_OUT, StepStatus.CANCELLED}
