"""decide(state, command, now) -> Accepted(events, outbox) | Rejected(reason): the run's processor.

Pure: time arrives as `now`, ids derive from the command's event_id, nothing is read or written.
Redelivered and stale commands are rejected with a reason, never half-applied: a command already
decided, an attempt that is no longer open, a timer that is no longer pending, any command for a
finished run, a StartRun for a run that exists.

Policy choices:
- A step that fails for good (no retry left, or a non-retryable error) fails the run; its other
  open steps are cancelled first.
- CancelStep cancels one open step (and everything open inside it, if it is a container); the
  run goes on as if the step were skipped: steps that depended only on skipped or cancelled
  steps are skipped, the others run, and the run can still complete.
- An approval is decided once, while it waits and before its timeout is due; rejected (by a
  person or by its timeout's default) it fails like a step with no retry left. A signal goes to
  the earliest step waiting for its name, else is kept for the wait step that will; one that no
  wait step of the workflow could take, or whose payload fails the schema, is refused.
- A gated tool call pauses its agent attempt until it is decided (bend.core.gates); the
  attempt stays out meanwhile, and the step's timeout, if any, counts the wait.
- A run's timeout fails it with error_type RunTimedOut; a step's timeout ends its attempt with
  StepTimedOut, which its retry policy treats as the (retryable) error type StepTimedOut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from bend.core.awaits import decide_approval, deliver, signal_problem, waiting_for, waits_on
from bend.core.cascade import advance, schedule_attempt
from bend.core.commands import (
    AwaitToolApproval, CancelRun, CancelStep, Command, CompleteStep, DecideApproval, FailStep,
    FireTimer, RecordLlmCall, RecordToolCall, ReportStepStarted, SignalRun, StartRun,
)
from bend.core.draft import Accepted, Decision, Draft, Rejected
from bend.core.errors import BendError
from bend.core.durations import parse_duration
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, RunCancelled, RunFailed, RunRequested,
    RunStarted, SignalReceived, StepScheduled, StepStarted, StepSucceeded, TimerFired, TimerSet,
)
from bend.core.gates import await_tool_approval, decide_tool_call
from bend.core.graph import compile_definition
from bend.core.ids import split_instance, timer_id
from bend.core.kinds import EXECUTOR_NODE_TYPES, NODE_KINDS, Runner, Wait, kind_of
from bend.core.nodes import schema_problem
from bend.core.outcomes import (
    cancel_all_open, cancel_instance, fail_attempt, fail_run, notify_parent,
)
from bend.core.state import RunState, StepStatus

__all__ = ["Accepted", "Decision", "Rejected", "decide", "start_run"]


def decide(state: RunState | None, cmd: Command, now: datetime) -> Decision:
    """The events `cmd` leads to in the run `state` (None: no such run yet), or why none."""
    if isinstance(cmd, StartRun):  # a fork's StartRun carries its seed (bend.core.fork)
        return start_run(state, cmd, now, seed=cmd.seed if cmd.forked_from_run_id else None)
    if state is None:
        return Rejected(f"run {cmd.run_id} does not exist; start it first", "unknown_run")
    if state.is_finished:
        return Rejected(f"run {state.run_id} is {state.status.value}; it takes no more commands",
                        "finished")
    if cmd.event_id in state.decided:
        return Rejected(f"command {cmd.event_id} was already decided (a redelivery)", "duplicate")
    if cmd.run_id != state.run_id:
        return Rejected(f"command for run {cmd.run_id} sent to run {state.run_id}", "invalid")
    handler = _HANDLERS.get(type(cmd))
    if handler is None:
        return Rejected(f"{type(cmd).__name__} is not a command a run decides", "invalid")
    return handler(state, cmd, now)


def start_run(state: RunState | None, cmd: StartRun, now: datetime,
              seed: Mapping[str, Any] | None = None) -> Decision:
    """Request and start the run; `seed` (a fork's recorded outputs) marks those steps done."""
    if state is not None:
        return Rejected(f"run {state.run_id} already exists ({state.status.value}); this "
                        "StartRun is a duplicate", "duplicate")
    if not cmd.run_id:
        return Rejected("StartRun needs a run_id", "invalid")
    if seed:
        top_level = _top_level_steps(cmd.definition)
        unknown = sorted(set(seed) - top_level)
        if unknown:
            return Rejected(f"the fork's seed names steps {', '.join(unknown)}, which are not "
                            "top-level steps of its definition", "invalid")
    d = Draft(cmd, now, None)
    d.emit(RunRequested, input=cmd.input, definition=cmd.definition,
           idempotency_key=cmd.idempotency_key, trigger_id=cmd.trigger_id,
           parent_run_id=cmd.parent_run_id, parent_step_id=cmd.parent_step_id,
           forked_from_run_id=cmd.forked_from_run_id, fork_step_id=cmd.fork_step_id,
           backtest_id=cmd.backtest_id,
           replayed=cmd.replayed if cmd.forked_from_run_id else None)
    problem = _start_problem(cmd, d.run)
    if problem is not None:
        d.emit(RunFailed, error_type=problem[0], message=problem[1])
        notify_parent(d)
        return d.accepted()
    d.emit(RunStarted)
    defn = d.run.definition
    assert defn is not None
    if defn.timeout is not None:
        d.emit(TimerSet, timer_id=timer_id(d.run.run_id, "run_timeout"), purpose="run_timeout",
               fire_at=now + parse_duration(defn.timeout))
    for step_id, output in (seed or {}).items():
        _seeded(d, step_id, output)
    advance(d)
    return d.accepted()


def _top_level_steps(definition: Any) -> set[str]:
    try:
        _defn, plan = compile_definition(definition)
    except BendError:
        return set()
    return set(plan.scope_steps[None])


def _start_problem(cmd: StartRun, run: RunState) -> tuple[str, str] | None:
    """Why the requested run cannot start (error type, message), or None."""
    if cmd.definition is None:
        return ("InvalidDefinition", "StartRun carried no definition; the sender must attach "
                "the workflow version's definition whole (runs are self-contained)")
    defn = run.definition
    if defn is None:  # RunRequested folded without one: say why
        try:
            compile_definition(cmd.definition)
        except BendError as exc:
            return ("InvalidDefinition", exc.message)
        raise AssertionError("a definition that compiles was not folded")
    if defn.input_schema is not None:
        error = best_match(validator_for(defn.input_schema)(defn.input_schema)
                           .iter_errors(cmd.input))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(input)"
            return ("InvalidInput", f"the input does not match the workflow's input_schema: "
                    f"{where}: {error.message}")
    return None


def _seeded(d: Draft, step_id: str, output: Any) -> None:
    node = d.plan.nodes[step_id]
    d.emit(StepScheduled, step_id=step_id, node_type=node.type, attempt=1, input=None,
           idempotency_key=f"{d.run.run_id}:{step_id}:1")
    d.emit(StepSucceeded, step_id=step_id, attempt=1, output=output)


def _open_attempt(state: RunState, step_id: str, attempt: int) -> Rejected | None:
    st = state.steps.get(step_id)
    if st is None:
        return Rejected(f"step {step_id} was never scheduled", "stale")
    kind = kind_of(st.node_type)
    if kind is None or not kind.reported:
        return Rejected(f"step {step_id} is a {st.node_type} step; the engine finishes it itself",
                        "invalid")
    if not (st.status.attempt_open and st.attempt == attempt):
        return Rejected(f"attempt {attempt} of step {step_id} is not open (the step is "
                        f"{st.status.value} at attempt {st.attempt})", "stale")
    return None


def _complete_step(state: RunState, cmd: CompleteStep, now: datetime) -> Decision:
    refused = _open_attempt(state, cmd.step_id, cmd.attempt)
    if refused:
        return refused
    d = Draft(cmd, now, state)
    _started_unreported(d, cmd.step_id, cmd.attempt, now - timedelta(milliseconds=cmd.duration_ms))
    d.emit(StepSucceeded, step_id=cmd.step_id, attempt=cmd.attempt, output=cmd.output,
           duration_ms=cmd.duration_ms)
    advance(d)
    return d.accepted()


def _fail_step(state: RunState, cmd: FailStep, now: datetime) -> Decision:
    refused = _open_attempt(state, cmd.step_id, cmd.attempt)
    if refused:
        return refused
    d = Draft(cmd, now, state)
    _started_unreported(d, cmd.step_id, cmd.attempt, now)
    fail_attempt(d, cmd.step_id, cmd.error_type, cmd.message, cmd.retryable)
    advance(d)
    return d.accepted()


def _started_unreported(d: Draft, step_id: str, attempt: int, started_at: datetime) -> None:
    """Record the start of an attempt whose executor reported only its end (a quick step).

    Executors report a start only for steps still running after a moment, which halves the
    commands of short steps; the log still holds every attempt's StepStarted, at its time.
    """
    st = d.run.step(step_id)
    if st.status is StepStatus.RUNNING or st.node_type not in EXECUTOR_NODE_TYPES:
        return
    at = max(started_at, st.scheduled_at) if st.scheduled_at else started_at
    d.emit(StepStarted, at=min(at, d.now), step_id=step_id, attempt=attempt)


def _step_started(state: RunState, cmd: ReportStepStarted, now: datetime) -> Decision:
    refused = _open_attempt(state, cmd.step_id, cmd.attempt)
    if refused:
        return refused
    if state.step(cmd.step_id).status is StepStatus.RUNNING:
        return Rejected(f"attempt {cmd.attempt} of step {cmd.step_id} was already reported "
                        "started", "duplicate")
    d = Draft(cmd, now, state)
    d.emit(StepStarted, step_id=cmd.step_id, attempt=cmd.attempt, worker_id=cmd.worker_id)
    return d.accepted()


def _fire_timer(state: RunState, cmd: FireTimer, now: datetime) -> Decision:
    timer = state.timers.get(cmd.timer_id)
    if timer is None:
        return Rejected(f"timer {cmd.timer_id} is not pending: it fired already, or the step or "
                        "run it was set for has moved on", "stale")
    d = Draft(cmd, now, state)
    d.emit(TimerFired, timer_id=timer.timer_id, purpose=timer.purpose, step_id=timer.step_id)
    defn = state.definition
    assert defn is not None
    if timer.purpose == "run_timeout":
        fail_run(d, "RunTimedOut", f"the run ran past its timeout of {defn.timeout}")
        return d.accepted()
    assert timer.step_id is not None
    st = d.run.step(timer.step_id)
    node = d.plan.nodes[split_instance(timer.step_id)[0]]
    if timer.purpose == "delay":
        d.emit(StepSucceeded, step_id=st.step_id, attempt=st.attempt,
               output={"waited_until": timer.fire_at.isoformat()})
    elif timer.purpose == "retry":
        spec = st.input
        if NODE_KINDS[node.type].runner is Runner.CHILD_RUN and isinstance(spec, dict):
            spec = {k: v for k, v in spec.items() if k != "child_run_id"}
        schedule_attempt(d, node, st.step_id, st.attempt + 1, spec)
    elif timer.purpose == "step_timeout" and waits_on(st) is Wait.APPROVAL:
        decide_approval(d, st.step_id, node.on_timeout == "approve", timed_out=True)
    elif timer.purpose == "step_timeout":
        timeout_ms = int((timer.fire_at - (st.scheduled_at or timer.fire_at)).total_seconds()
                         * 1000)
        fail_attempt(d, st.step_id, "StepTimedOut", f"attempt {st.attempt} timed out", True,
                     timed_out_ms=timeout_ms)
    advance(d)
    return d.accepted()


def _cancel_run(state: RunState, cmd: CancelRun, now: datetime) -> Decision:
    d = Draft(cmd, now, state)
    cancel_all_open(d, cmd.reason or "the run was cancelled")
    d.emit(RunCancelled, reason=cmd.reason, requested_by=cmd.requested_by)
    notify_parent(d)
    return d.accepted()


def _cancel_step(state: RunState, cmd: CancelStep, now: datetime) -> Decision:
    st = state.step(cmd.step_id)
    if not st.status.open:
        return Rejected(f"step {cmd.step_id} is {st.status.value}, not open; only a begun, "
                        "unfinished step can be cancelled", "stale")
    d = Draft(cmd, now, state)
    cancel_instance(d, cmd.step_id, cmd.reason or f"cancelled by {cmd.requested_by or 'request'}")
    advance(d)
    return d.accepted()


def _record_call(state: RunState, cmd: RecordLlmCall | RecordToolCall,
                 now: datetime) -> Decision:
    st = state.step(cmd.step_id)
    if st.attempt < 1 or not 1 <= cmd.attempt <= st.attempt:
        return Rejected(f"attempt {cmd.attempt} of step {cmd.step_id} never began", "stale")
    d = Draft(cmd, now, state)
    fields = {k: getattr(cmd, k) for k in _CALL_FIELDS[type(cmd)]}
    d.emit(AgentLlmCallRecorded if isinstance(cmd, RecordLlmCall) else AgentToolCallRecorded,
           **fields)
    return d.accepted()


def _decide_approval(state: RunState, cmd: DecideApproval, now: datetime) -> Decision:
    if cmd.tool_call_id:
        return decide_tool_call(state, cmd, now)
    st = state.steps.get(cmd.step_id)
    if st is None or waits_on(st) is not Wait.APPROVAL:
        return Rejected(f"step {cmd.step_id} is not an approval step of run {state.run_id}",
                        "invalid")
    if not st.status.attempt_open:
        return Rejected(f"approval {cmd.step_id} is not waiting: it is {st.status.value} (was "
                        "it decided already, or did it time out?)", "stale")
    timer = state.timers.get(timer_id(state.run_id, "step_timeout", st.step_id, st.attempt))
    if timer is not None and timer.fire_at <= now:
        return Rejected(f"approval {cmd.step_id} timed out at {timer.fire_at.isoformat()}; it "
                        "takes its default", "stale")
    node = state.plan.nodes[split_instance(cmd.step_id)[0]] if state.plan else None
    if cmd.approved and node is not None:
        problem = schema_problem(node.answer_schema, cmd.answer)
        if problem is not None:
            return Rejected(f"the answer does not match approval {cmd.step_id}'s answer_schema: "
                            f"{problem}", "invalid")
    d = Draft(cmd, now, state)
    decide_approval(d, cmd.step_id, cmd.approved, decided_by=cmd.decided_by,
                    comment=cmd.comment, answer=cmd.answer if cmd.approved else None)
    advance(d)
    return d.accepted()


def _signal_run(state: RunState, cmd: SignalRun, now: datetime) -> Decision:
    problem = signal_problem(state, cmd.name, cmd.payload)
    if problem is not None:
        return Rejected(problem, "invalid")
    d = Draft(cmd, now, state)
    received = d.emit(SignalReceived, name=cmd.name, payload=cmd.payload, sent_by=cmd.sent_by)
    waiting = waiting_for(d.run, cmd.name)
    if waiting is not None:
        kept = next(s for s in d.run.signals if s.signal_id == received.event_id)
        deliver(d, waiting.step_id, kept)
        advance(d)
    return d.accepted()


_CALL_FIELDS = {
    RecordLlmCall: ("step_id", "attempt", "call_index", "model", "request", "response",
                    "prompt_tokens", "completion_tokens", "latency_ms", "provider", "endpoint",
                    "fallback", "cost_usd"),
    RecordToolCall: ("step_id", "attempt", "call_index", "tool_call_id", "tool_name",
                     "arguments", "result", "error", "latency_ms"),
}

_HANDLERS: dict[type, Callable[[RunState, Any, datetime], Decision]] = {
    CompleteStep: _complete_step,
    FailStep: _fail_step,
    ReportStepStarted: _step_started,
    FireTimer: _fire_timer,
    CancelRun: _cancel_run,
    CancelStep: _cancel_step,
    RecordLlmCall: _record_call,
    RecordToolCall: _record_call,
    DecideApproval: _decide_approval,
    SignalRun: _signal_run,
    AwaitToolApproval: await_tool_approval,
}
