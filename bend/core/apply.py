"""apply(state, event) -> state: folds one recorded event into a run's state, never deciding.

Each event type has an applier, registered by type name and version (all V1 so far); when an
event's meaning changes, a V2 applier goes beside the V1 one and the recorded histories in
tests/fixtures/histories keep V1 honest. Before an applier runs, the event is checked against
the transition tables (transitions.py), the run's sequence and the step's attempt; an event that
does not fit raises IllegalTransition. A step's timers are disarmed when its attempt ends, and
all timers when the run finishes: a timer that is no longer pending cannot fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bend.core.errors import BendError
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, ApprovalDecided, Event, RunCancelled, RunCompleted,
    RunFailed, SignalDelivered, SignalReceived,
    RunRequested, RunStarted, StepCancelled, StepFailed, StepResumed, StepRetryScheduled,
    StepScheduled, StepSkipped, StepStarted, StepSucceeded, StepTimedOut, TimerFired, TimerSet,
    ToolApprovalRequested,
)
from bend.core.frozen import FrozenMap
from bend.core.graph import compile_definition
from bend.core.ids import split_instance
from bend.core.state import (
    KeptSignal, PendingToolCall, RunError, RunState, RunStatus, StepError, StepState, StepStatus,
    Timer,
)
from bend.core.transitions import IllegalTransition, run_target, step_target

__all__ = ["APPLIERS", "apply", "fold"]

RunApplier = Callable[[RunState | None, Any], RunState]
StepApplier = Callable[[StepState, Any], StepState]


def apply(state: RunState | None, event: Event) -> RunState:
    """The run's state after `event`; IllegalTransition if the event does not fit the state."""
    name = type(event).__name__
    seq = getattr(event, "seq", 0)
    run_id = getattr(event, "run_id", None)

    def illegal(detail: str) -> IllegalTransition:
        return IllegalTransition(run_id, name, seq, detail)

    try:
        target = run_target(state.status if state is not None else None, name)
    except ValueError as exc:
        raise illegal(str(exc)) from None
    expected = 1 if state is None else state.seq + 1
    if seq != expected:
        raise illegal(f"its seq should be {expected}")
    if state is not None and run_id != state.run_id:
        raise illegal(f"it belongs to run {run_id}, not {state.run_id}")
    applier = APPLIERS.get((name, 1))
    if applier is None:
        raise illegal("no applier folds this event type")
    try:
        new = applier(state, event)
    except (ValueError, KeyError) as exc:
        raise illegal(str(exc).strip("'\"")) from None
    if target is not None:
        new = replace(new, status=target)
    decided = new.decided
    if event.causation_id and event.causation_id not in decided:
        decided = decided | {event.causation_id}
    return replace(new, seq=seq, decided=decided)


def fold(events: list[Event] | tuple[Event, ...], state: RunState | None = None) -> RunState | None:
    """The state after folding `events` in order onto `state` (a whole history: from None)."""
    for event in events:
        state = apply(state, event)
    return state


# --- run events -----------------------------------------------------------------------------


def _requested(state: RunState | None, ev: RunRequested) -> RunState:
    if not ev.run_id:
        raise ValueError("a run needs a run_id")
    try:
        defn, plan = compile_definition(ev.definition)
    except BendError:  # recorded anyway; decide failed the run in the same decision
        defn, plan = None, None
    return RunState(
        run_id=ev.run_id, workflow_id=ev.workflow_id, workflow_version=ev.workflow_version,
        status=RunStatus.REQUESTED, seq=0, tenant=ev.tenant, project=ev.project,
        correlation_id=ev.correlation_id, definition=defn, plan=plan, input=ev.input,
        requested_at=ev.occurred_at, idempotency_key=ev.idempotency_key,
        trigger_id=ev.trigger_id, parent_run_id=ev.parent_run_id,
        parent_step_id=ev.parent_step_id, forked_from_run_id=ev.forked_from_run_id,
        fork_step_id=ev.fork_step_id, backtest_id=ev.backtest_id,
        replayed=ev.replayed if isinstance(ev.replayed, dict) else None,
    )


def _started(state: RunState, ev: RunStarted) -> RunState:
    return replace(state, started_at=ev.occurred_at)


def _no_open_steps(state: RunState) -> None:
    open_steps = [s.step_id for s in state.open_steps()]
    if open_steps:
        raise ValueError(f"steps {', '.join(open_steps)} are still open")


def _completed(state: RunState, ev: RunCompleted) -> RunState:
    _no_open_steps(state)
    return replace(state, output=ev.output, finished_at=ev.occurred_at, timers=FrozenMap())


def _failed(state: RunState, ev: RunFailed) -> RunState:
    _no_open_steps(state)
    return replace(state, error=RunError(ev.error_type, ev.message, ev.step_id),
                   finished_at=ev.occurred_at, timers=FrozenMap())


def _cancelled(state: RunState, ev: RunCancelled) -> RunState:
    _no_open_steps(state)
    return replace(state, error=RunError("RunCancelled", ev.reason or "cancelled"),
                   finished_at=ev.occurred_at, timers=FrozenMap())


# --- timers ---------------------------------------------------------------------------------


def _timer_set(state: RunState, ev: TimerSet) -> RunState:
    if ev.timer_id in state.timers:
        raise ValueError(f"timer {ev.timer_id} is already pending")
    timer = Timer(ev.timer_id, ev.purpose, ev.fire_at, ev.step_id)
    return replace(state, timers=state.timers.set(ev.timer_id, timer))


def _timer_fired(state: RunState, ev: TimerFired) -> RunState:
    if ev.timer_id not in state.timers:
        raise ValueError(f"timer {ev.timer_id} is not pending")
    return replace(state, timers=state.timers.remove(ev.timer_id))


# --- steps ----------------------------------------------------------------------------------


def _step_applier(fold_step: StepApplier) -> RunApplier:
    """A run applier that checks the step's transition, then folds `fold_step` into it."""

    def applier(state: RunState | None, ev: Any) -> RunState:
        assert state is not None  # run_target allows step events only in a running run
        split_instance(ev.step_id)  # a well-formed instance id, or ValueError
        current = state.step(ev.step_id)
        target = step_target(current.status, type(ev).__name__)
        new = fold_step(current, ev)
        if target is not None:
            new = replace(new, status=target)
        timers, open_ids = state.timers, state.open_ids
        if new.status.finished or new.status is StepStatus.RETRY_WAIT:
            timers = timers.remove(*(t for t, tm in timers.items() if tm.step_id == ev.step_id))
        if new.status.open != current.status.open:
            open_ids = open_ids | {ev.step_id} if new.status.open else open_ids - {ev.step_id}
        return replace(state, steps=state.steps.set(ev.step_id, new), timers=timers,
                       open_ids=open_ids)

    return applier


def _same_attempt(step: StepState, attempt: int) -> None:
    if attempt != step.attempt:
        raise ValueError(f"attempt {attempt} is not the open attempt {step.attempt}")


def _scheduled(step: StepState, ev: StepScheduled) -> StepState:
    if ev.attempt != step.attempt + 1:
        raise ValueError(f"attempt {ev.attempt} does not follow attempt {step.attempt}")
    return replace(step, node_type=ev.node_type, attempt=ev.attempt, input=ev.input, output=None,
                   error=None, worker_id="", scheduled_at=ev.occurred_at, started_at=None,
                   retry_at=None, awaiting=None)


def _step_started(step: StepState, ev: StepStarted) -> StepState:
    _same_attempt(step, ev.attempt)
    return replace(step, worker_id=ev.worker_id, started_at=ev.occurred_at)


def _succeeded(step: StepState, ev: StepSucceeded) -> StepState:
    _same_attempt(step, ev.attempt)
    return replace(step, output=ev.output, finished_at=ev.occurred_at)


def _step_failed(step: StepState, ev: StepFailed) -> StepState:
    _same_attempt(step, ev.attempt)
    return replace(step, error=StepError(ev.error_type, ev.message, ev.retryable),
                   finished_at=ev.occurred_at)


def _timed_out(step: StepState, ev: StepTimedOut) -> StepState:
    _same_attempt(step, ev.attempt)
    error = StepError("StepTimedOut", f"attempt {ev.attempt} ran past its timeout of "
                      f"{ev.timeout_ms} ms", True)
    return replace(step, error=error, finished_at=ev.occurred_at)


def _retry_scheduled(step: StepState, ev: StepRetryScheduled) -> StepState:
    if ev.next_attempt != step.attempt + 1:
        raise ValueError(f"next attempt {ev.next_attempt} does not follow {step.attempt}")
    return replace(step, retry_at=ev.retry_at, finished_at=None)


def _skipped(step: StepState, ev: StepSkipped) -> StepState:
    return replace(step, reason=ev.reason, finished_at=ev.occurred_at)


def _step_cancelled(step: StepState, ev: StepCancelled) -> StepState:
    return replace(step, reason=ev.reason, finished_at=ev.occurred_at)


def _call_recorded(step: StepState, ev: AgentLlmCallRecorded | AgentToolCallRecorded) -> StepState:
    if ev.attempt > step.attempt or ev.attempt < 1:
        raise ValueError(f"attempt {ev.attempt} of the step never began")
    return step  # the call is kept in the log; the run adds up its usage


_record_step_call = _step_applier(_call_recorded)


def _llm_call_recorded(state: RunState | None, ev: AgentLlmCallRecorded) -> RunState:
    new = _record_step_call(state, ev)
    return replace(new, usage=new.usage.plus(ev.prompt_tokens + ev.completion_tokens,
                                             ev.cost_usd))


def _approval_decided(step: StepState, ev: ApprovalDecided) -> StepState:
    _same_attempt(step, ev.attempt)
    if ev.tool_call_id:  # a gated tool call: StepResumed hands the attempt out again
        if step.awaiting is None or step.awaiting.tool_call_id != ev.tool_call_id:
            raise ValueError(f"the step waits on no tool call {ev.tool_call_id}")
        return replace(step, awaiting=None)
    return step  # the decision is in the log; StepSucceeded or StepFailed ends the step


def _tool_approval_requested(step: StepState, ev: ToolApprovalRequested) -> StepState:
    _same_attempt(step, ev.attempt)
    if step.awaiting is not None:
        raise ValueError(f"the step already waits on tool call {step.awaiting.tool_call_id}")
    pending = PendingToolCall(ev.tool_call_id, ev.tool_name, ev.arguments, ev.approvers,
                              ev.checkpoint, ev.occurred_at)
    return replace(step, awaiting=pending)


def _resumed(step: StepState, ev: StepResumed) -> StepState:
    _same_attempt(step, ev.attempt)
    if step.awaiting is not None:
        raise ValueError(f"the step still waits on tool call {step.awaiting.tool_call_id}")
    return replace(step, input=ev.input)


# --- signals --------------------------------------------------------------------------------


def _signal_received(state: RunState, ev: SignalReceived) -> RunState:
    kept = KeptSignal(ev.event_id, ev.name, ev.payload, ev.sent_by, ev.occurred_at)
    return replace(state, signals=(*state.signals, kept))


def _taken(step: StepState, ev: SignalDelivered) -> StepState:
    _same_attempt(step, ev.attempt)
    return step


_deliver_step = _step_applier(_taken)


def _signal_delivered(state: RunState, ev: SignalDelivered) -> RunState:
    new = _deliver_step(state, ev)
    kept = next((s for s in state.signals if s.signal_id == ev.signal_id), None)
    if kept is None or kept.name != ev.name:
        raise ValueError(f"no signal {ev.name} {ev.signal_id} is kept")
    return replace(new, signals=tuple(s for s in state.signals if s is not kept))


APPLIERS: dict[tuple[str, int], RunApplier] = {
    ("RunRequested", 1): _requested,
    ("RunStarted", 1): _started,  # type: ignore[dict-item]
    ("RunCompleted", 1): _completed,  # type: ignore[dict-item]
    ("RunFailed", 1): _failed,  # type: ignore[dict-item]
    ("RunCancelled", 1): _cancelled,  # type: ignore[dict-item]
    ("TimerSet", 1): _timer_set,  # type: ignore[dict-item]
    ("TimerFired", 1): _timer_fired,  # type: ignore[dict-item]
    ("StepScheduled", 1): _step_applier(_scheduled),
    ("StepStarted", 1): _step_applier(_step_started),
    ("StepSucceeded", 1): _step_applier(_succeeded),
    ("StepFailed", 1): _step_applier(_step_failed),
    ("StepTimedOut", 1): _step_applier(_timed_out),
    ("StepRetryScheduled", 1): _step_applier(_retry_scheduled),
    ("StepSkipped", 1): _step_applier(_skipped),
    ("StepCancelled", 1): _step_applier(_step_cancelled),
    ("AgentLlmCallRecorded", 1): _llm_call_recorded,
    ("AgentToolCallRecorded", 1): _step_applier(_call_recorded),
    ("ApprovalDecided", 1): _step_applier(_approval_decided),
    ("ToolApprovalRequested", 1): _step_applier(_tool_approval_requested),
    ("StepResumed", 1): _step_applier(_resumed),
    ("SignalReceived", 1): _signal_received,  # type: ignore[dict-item]
    ("SignalDelivered", 1): _signal_delivered,  # type: ignore[dict-item]
}
