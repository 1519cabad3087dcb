"""Which event may happen in which state: the run and step transition tables `apply` consults.

Each rule names its intent, the states it may come FROM and the state it leads TO (None: the
status stays). An event type missing from a table is not allowed at that level at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from bend.core.errors import BendError
from bend.core.state import RunStatus, StepStatus

__all__ = [
    "IllegalTransition", "RUN_RULES", "STEP_EVENT_TYPES", "STEP_RULES", "Rule", "run_target",
    "step_target",
]

S = TypeVar("S")
R, St = RunStatus, StepStatus


class IllegalTransition(BendError):
    """An event does not fit the run's state: the run's log is inconsistent."""

    def __init__(self, run_id: str | None, event_type: str, seq: int, detail: str) -> None:
        super().__init__(f"run {run_id}: {event_type} (seq {seq}) cannot be applied: {detail}; "
                         "the log does not fit the engine: inspect it with `bend replay "
                         f"{run_id}`")
        self.run_id = run_id
        self.event_type = event_type
        self.seq = seq
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rule(Generic[S]):
    """An event is allowed FROM these states and leads TO that one (None: unchanged)."""

    intent: str
    from_states: frozenset[S | None]
    to_state: S | None


def _rule(intent: str, from_states: tuple[S | None, ...], to_state: S | None) -> Rule[S]:
    return Rule(intent, frozenset(from_states), to_state)


_WHILE_RUNNING = (R.RUNNING,)

RUN_RULES: dict[str, Rule[RunStatus]] = {
    "RunRequested": _rule("a run is requested once", (None,), R.REQUESTED),
    "RunStarted": _rule("a requested run starts once", (R.REQUESTED,), R.RUNNING),
    "RunCompleted": _rule("only a running run completes", _WHILE_RUNNING, R.COMPLETED),
    "RunFailed": _rule("an unfinished run may fail", (R.REQUESTED, R.RUNNING), R.FAILED),
    "RunCancelled": _rule("an unfinished run may be cancelled", (R.REQUESTED, R.RUNNING),
                          R.CANCELLED),
    **{name: _rule("steps and timers move only in a running run", _WHILE_RUNNING, None)
       for name in ("StepScheduled", "StepStarted", "StepSucceeded", "StepFailed",
                    "StepRetryScheduled", "StepTimedOut", "StepSkipped", "StepCancelled",
                    "TimerSet", "TimerFired", "AgentLlmCallRecorded", "AgentToolCallRecorded",
                    "ApprovalDecided", "SignalReceived", "SignalDelivered",
                    "ToolApprovalRequested", "StepResumed")},
}

_ATTEMPT_OUT = (St.SCHEDULED, St.RUNNING)
_BEGUN = (St.SCHEDULED, St.RUNNING, St.SUCCEEDED, St.FAILED, St.TIMED_OUT, St.RETRY_WAIT,
          St.CANCELLED)

STEP_RULES: dict[str, Rule[StepStatus]] = {
    "StepScheduled": _rule("a pending step, or one waiting to retry, gets its next attempt",
                           (St.PENDING, St.RETRY_WAIT), St.SCHEDULED),
    "StepStarted": _rule("an executor starts a scheduled attempt once", (St.SCHEDULED,),
                         St.RUNNING),
    "StepSucceeded": _rule("an attempt that is out may succeed", _ATTEMPT_OUT, St.SUCCEEDED),
    "StepFailed": _rule("an attempt that is out may fail", _ATTEMPT_OUT, St.FAILED),
    "StepTimedOut": _rule("an attempt that is out may time out", _ATTEMPT_OUT, St.TIMED_OUT),
    "StepRetryScheduled": _rule("a failed or timed-out attempt may be retried",
                                (St.FAILED, St.TIMED_OUT), St.RETRY_WAIT),
    "StepSkipped": _rule("only a step that never began is skipped", (St.PENDING,), St.SKIPPED),
    "StepCancelled": _rule("only a begun, unfinished step is cancelled",
                           (St.SCHEDULED, St.RUNNING, St.RETRY_WAIT), St.CANCELLED),
    "AgentLlmCallRecorded": _rule("calls are recorded for steps that began", _BEGUN, None),
    "AgentToolCallRecorded": _rule("calls are recorded for steps that began", _BEGUN, None),
    "ApprovalDecided": _rule("only a waiting approval (or gated tool call) is decided",
                             _ATTEMPT_OUT, None),
    "ToolApprovalRequested": _rule("an attempt that is out may pause on a gated tool call",
                                   _ATTEMPT_OUT, None),
    "StepResumed": _rule("a paused attempt is handed out again", _ATTEMPT_OUT, None),
    "SignalDelivered": _rule("a kept signal goes to a waiting step",
                             (St.SCHEDULED,), None),
}

STEP_EVENT_TYPES = frozenset(STEP_RULES)

# The events that end a step's attempt and a run, by type name, with the status each leaves:
# the engine, the UI, replay, metrics and tracing read these, not lists of their own.
STEP_ENDINGS: dict[str, StepStatus] = {
    name: step_status for name in ("StepSucceeded", "StepFailed", "StepTimedOut", "StepCancelled")
    if (step_status := STEP_RULES[name].to_state) is not None}
RUN_ENDINGS: dict[str, RunStatus] = {
    name: run_status for name in ("RunCompleted", "RunFailed", "RunCancelled")
    if (run_status := RUN_RULES[name].to_state) is not None}


def run_target(status: RunStatus | None, event_type: str) -> RunStatus | None:
    """The run status after `event_type` (None: unchanged); ValueError if it is not allowed."""
    rule = RUN_RULES.get(event_type)
    if rule is None:
        raise ValueError(f"{event_type} is not an event of a run")
    if status not in rule.from_states:
        shown = status.value if status is not None else "no run yet"
        raise ValueError(f"not allowed when the run is {shown} ({rule.intent})")
    return rule.to_state


def step_target(status: StepStatus, event_type: str) -> StepStatus | None:
    """The step status after `event_type` (None: unchanged); ValueError if it is not allowed."""
    rule = STEP_RULES.get(event_type)
    if rule is None:
        raise ValueError(f"{event_type} is not an event of a step")
    if status not in rule.from_states:
        raise ValueError(f"not allowed when the step is {status.value} ({rule.intent})")
    return rule.to_state
