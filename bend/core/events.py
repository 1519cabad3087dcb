"""Every fact Bend records, as frozen values; each class has one Avro schema of the same name.

A record's envelope (ids, sequence, time, tenant) is shared by all of them. Fields marked
`json_field()` hold JSON values (step inputs, outputs, payloads) and travel as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "ENVELOPE_FIELDS", "Envelope", "Event", "EVENT_TYPES", "json_field", "json_fields",
    "WorkflowRegistered", "WorkflowVersioned", "WorkflowActivated", "WorkflowPaused",
    "WorkflowDeleted", "RunRequested", "RunStarted", "RunCompleted", "RunFailed",
    "RunCancelled", "StepScheduled", "StepStarted", "StepSucceeded", "StepFailed",
    "StepRetryScheduled", "StepTimedOut", "StepSkipped", "StepCancelled", "TimerSet",
    "TimerFired", "TriggerFired", "TriggerRegistered", "TriggerUpdated", "TriggerRemoved",
    "TriggerFailed", "TriggerReplayRequested",
    "ComponentRegistered", "CircuitStateChanged", "AgentLlmCallRecorded", "AgentToolCallRecorded",
    "DeadLetterRedriven",
    "DeadLettered", "ApprovalDecided", "SignalReceived", "SignalDelivered",
    "ToolApprovalRequested", "StepResumed", "BacktestRequested", "StepEnding",
]


def json_field(default: Any = None) -> Any:
    """A field holding a JSON value (dict, list, str, number, bool or None)."""
    return field(default=default, metadata={"json": True})


@dataclass(frozen=True, kw_only=True, slots=True)
class Envelope:
    """What every record carries: identity, position in its run, time, causality, tenancy."""

    event_id: str
    run_id: str | None = None
    workflow_id: str
    workflow_version: int = 0
    seq: int = 0  # position within the run (or workflow); 0 on records not yet sequenced
    occurred_at: datetime
    causation_id: str | None = None
    correlation_id: str | None = None
    tenant: str = "default"
    project: str = "default"

    @property
    def event_type(self) -> str:
        """The record's type name, which is also its Avro schema's name."""
        return type(self).__name__


ENVELOPE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Envelope))


@dataclass(frozen=True, kw_only=True, slots=True)
class Event(Envelope):
    """A fact that happened; past tense."""

    topic_kind: ClassVar[str] = "runs"


def json_fields(cls: type) -> frozenset[str]:
    """Names of the fields of `cls` that hold JSON values."""
    return frozenset(f.name for f in fields(cls) if f.metadata.get("json"))


# --- workflows (keyed by workflow_id) -------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowRegistered(Event):
    """A new workflow was created with its first version."""

    topic_kind: ClassVar[str] = "workflows"
    name: str
    description: str = ""
    definition: Any = json_field()
    definition_hash: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowVersioned(Event):
    """A workflow got a new immutable version (`workflow_version`)."""

    topic_kind: ClassVar[str] = "workflows"
    definition: Any = json_field()
    definition_hash: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowActivated(Event):
    """A workflow's triggers may start runs."""

    topic_kind: ClassVar[str] = "workflows"
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowPaused(Event):
    """A workflow's triggers start no runs until it is activated again."""

    topic_kind: ClassVar[str] = "workflows"
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowDeleted(Event):
    """A workflow was deleted; its runs and history stay readable."""

    topic_kind: ClassVar[str] = "workflows"
    actor: str = ""


# --- runs (keyed by run_id) -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRequested(Event):
    """A run was asked for, pinned to `workflow_version`; `definition` is that version, whole."""

    input: Any = json_field()
    definition: Any = json_field()
    idempotency_key: str | None = None
    trigger_id: str | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    forked_from_run_id: str | None = None
    fork_step_id: str | None = None
    backtest_id: str | None = None  # the backtest this run belongs to, if any
    # A backtest's recorded outputs of the impure steps after fork_step_id, by step instance;
    # None: those steps run for real (bend.core.fork).
    replayed: Any = json_field()


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStarted(Event):
    """The run began executing its first steps."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunCompleted(Event):
    """Every step the run needed has finished; `output` is the run's result."""

    output: Any = json_field()
    duration_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class RunFailed(Event):
    """The run stopped on an error it cannot recover from."""

    error_type: str
    message: str
    step_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunCancelled(Event):
    """The run was cancelled; no further step starts."""

    reason: str = ""
    requested_by: str = ""


# --- steps ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class StepScheduled(Event):
    """A step's attempt is ready for an executor; `idempotency_key` goes to every side effect."""

    step_id: str
    node_type: str
    attempt: int = 1
    input: Any = json_field()
    idempotency_key: str = ""
    timeout_ms: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StepStarted(Event):
    """An executor picked up the step's attempt."""

    step_id: str
    attempt: int = 1
    worker_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class StepSucceeded(Event):
    """The step's attempt produced `output`."""

    step_id: str
    attempt: int = 1
    output: Any = json_field()
    duration_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class StepFailed(Event):
    """The step's attempt failed; `retryable` says whether its policy may try again."""

    step_id: str
    attempt: int = 1
    error_type: str
    message: str
    retryable: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class StepRetryScheduled(Event):
    """A failed step will be tried again as `next_attempt` at `retry_at`."""

    step_id: str
    next_attempt: int
    retry_at: datetime
    delay_ms: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StepTimedOut(Event):
    """The step's attempt ran past its timeout."""

    step_id: str
    attempt: int = 1
    timeout_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class StepSkipped(Event):
    """The step will not run (an untaken branch, or its inputs were skipped)."""

    step_id: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class StepCancelled(Event):
    """The step was cancelled before it finished; `attempt` is the one that was out, if any."""

    step_id: str
    reason: str = ""
    attempt: int = 0  # 0: none was out (the step waited for a retry); older records say 0


# --- timers ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class TimerSet(Event):
    """A durable timer: `purpose` is delay, retry, step_timeout or run_timeout."""

    timer_id: str
    purpose: str
    fire_at: datetime
    step_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TimerFired(Event):
    """A durable timer came due."""

    timer_id: str
    purpose: str
    step_id: str | None = None


# --- approvals and signals -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalDecided(Event):
    """An approval step was approved or rejected: by whom, with what comment and answer.

    `timed_out` marks the default its timeout took (`decided_by` is then empty). With
    `tool_call_id`, it decided that gated tool call of the agent step `step_id`.
    """

    step_id: str
    attempt: int = 1
    approved: bool
    decided_by: str = ""
    comment: str = ""
    answer: Any = json_field()
    timed_out: bool = False
    tool_call_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolApprovalRequested(Event):
    """An agent step's model called a gated tool; the attempt waits for a person to decide.

    `approvers` are who may decide (roles, keys); `checkpoint` is where the agent loop stands.
    """

    step_id: str
    attempt: int = 1
    tool_call_id: str
    tool_name: str
    arguments: Any = json_field()
    approvers: Any = json_field()
    checkpoint: Any = json_field()


@dataclass(frozen=True, kw_only=True, slots=True)
class StepResumed(Event):
    """A paused attempt is handed to an executor again, with `input` saying where to resume.

    Its fields are a StepScheduled's: the executor receives it as that attempt's task.
    """

    step_id: str
    node_type: str
    attempt: int = 1
    input: Any = json_field()
    idempotency_key: str = ""
    timeout_ms: int | None = None

    def task(self) -> StepScheduled:
        """The task an executor runs: this attempt, as scheduled again."""
        return StepScheduled(
            event_id=self.event_id, run_id=self.run_id, workflow_id=self.workflow_id,
            workflow_version=self.workflow_version, seq=self.seq, occurred_at=self.occurred_at,
            causation_id=self.causation_id, correlation_id=self.correlation_id,
            tenant=self.tenant, project=self.project, step_id=self.step_id,
            node_type=self.node_type, attempt=self.attempt, input=self.input,
            idempotency_key=self.idempotency_key, timeout_ms=self.timeout_ms)


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalReceived(Event):
    """A signal came for the run; it is kept until a wait step for `name` takes it."""

    name: str
    payload: Any = json_field()
    sent_by: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalDelivered(Event):
    """The kept signal `signal_id` (its SignalReceived's event_id) was handed to a wait step."""

    step_id: str
    attempt: int = 1
    name: str
    signal_id: str


# --- triggers, components, agents, dead letters ---------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerRegistered(Event):
    """A trigger (schedule, webhook, Kafka event, polling, manual) was added to a workflow."""

    topic_kind: ClassVar[str] = "triggers"
    trigger_id: str
    trigger_type: str
    definition: Any = json_field()
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerUpdated(Event):
    """A trigger's definition changed (or it was enabled or disabled)."""

    topic_kind: ClassVar[str] = "triggers"
    trigger_id: str
    definition: Any = json_field()
    enabled: bool = True
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerRemoved(Event):
    """A trigger was removed; it fires no more."""

    topic_kind: ClassVar[str] = "triggers"
    trigger_id: str
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ComponentRegistered(Event):
    """A component version (`name@version`) was registered with its schemas.

    Components travel on the workflows topic with `workflow_id` = `component:<name>`.
    """

    topic_kind: ClassVar[str] = "workflows"
    name: str
    version: str
    description: str = ""
    tags: Any = json_field()
    input_schema: Any = json_field()
    output_schema: Any = json_field()
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerFired(Event):
    """A trigger fired once for `dedupe_key` (schedule + due time, topic/partition/offset, …)."""

    topic_kind: ClassVar[str] = "triggers"
    trigger_id: str
    trigger_type: str
    dedupe_key: str
    due_at: datetime | None = None
    input: Any = json_field()


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerFailed(Event):
    """A trigger could not poll, read, decode, filter or start a run; `stage` says which."""

    topic_kind: ClassVar[str] = "triggers"
    trigger_id: str
    trigger_type: str
    stage: str  # poll, subscribe, decode, filter, map, start
    error: str
    source: str | None = None  # the URL polled or the record (topic/partition/offset)


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerReplayRequested(Event):
    """Re-read a Kafka trigger's topic from an offset or a time; `force` fires fired records again.

    `partition` None means every partition (from `from_offset` each, or from `from_time`).
    """

    topic_kind: ClassVar[str] = "triggers"
    trigger_id: str
    replay_id: str
    partition: int | None = None
    from_offset: int | None = None
    from_time: datetime | None = None
    force: bool = False
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestRequested(Event):
    """A backtest of a workflow's step began: the change, the runs chosen, the forks started.

    Keyed by `workflow_id` on the workflows topic; `runs` pairs each source run with the backtest
    run forked from it (`[{"source_run_id": ..., "run_id": ...}]`), whose StartRun follows.
    """

    topic_kind: ClassVar[str] = "workflows"
    backtest_id: str
    step_id: str
    changes: Any = json_field()
    selection: Any = json_field()
    runs: Any = json_field()
    live_downstream: bool = False
    actor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentLlmCallRecorded(Event):
    """One chat-completions call of an agent step, recorded so replay never calls the model."""

    step_id: str
    attempt: int = 1
    call_index: int
    model: str
    request: Any = json_field()
    response: Any = json_field()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    provider: str = ""  # the API that answered: openai | anthropic ("" before it was kept)
    endpoint: str = ""  # the base URL that answered
    fallback: int = 0  # 0: the step's own model answered; n: its n-th fallback
    cost_usd: float = 0.0  # priced by the executor from its price table (0: unpriced)


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentToolCallRecorded(Event):
    """One tool call an agent step made, with its arguments and result."""

    step_id: str
    attempt: int = 1
    call_index: int
    tool_call_id: str
    tool_name: str
    arguments: Any = json_field()
    result: Any = json_field()
    error: str | None = None
    latency_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class CircuitStateChanged(Event):
    """An executor's breaker for an external target changed state (closed, open, half_open).

    Breakers belong to executors, not runs: `workflow_id` is empty and `run_id` names the run
    whose step made the call that tipped it, when there was one.
    """

    topic_kind: ClassVar[str] = "circuits"
    target: str
    from_state: str
    to_state: str
    consecutive_failures: int = 0
    open_until: datetime | None = None
    worker_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadLettered(Event):
    """A record no processor could handle, kept whole with the reason."""

    topic_kind: ClassVar[str] = "dead_letters"
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    reason: str
    key: bytes | None = None
    payload: bytes = b""
    # The record's headers as read: [{"key": name, "value": base64 or null}, ...].
    headers: Any = json_field()


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadLetterRedriven(Event):
    """A dead letter's record sent back to its source topic (key, headers and bytes as read)."""

    topic_kind: ClassVar[str] = "dead_letters"
    dead_letter_id: str  # the DeadLettered event's id
    target_topic: str
    target_partition: int
    target_offset: int
    actor: str
    forced: bool = False  # sent although it had been re-driven before
    source_key: bytes | None = None  # the dead letter's key: this event's key, beside it


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        WorkflowRegistered, WorkflowVersioned, WorkflowActivated, WorkflowPaused,
        WorkflowDeleted, RunRequested, RunStarted, RunCompleted, RunFailed, RunCancelled,
        StepScheduled, StepStarted, StepSucceeded, StepFailed, StepRetryScheduled,
        StepTimedOut, StepSkipped, StepCancelled, TimerSet, TimerFired, TriggerFired,
        TriggerRegistered, TriggerUpdated, TriggerRemoved, TriggerFailed, TriggerReplayRequested,
        ComponentRegistered,
        AgentLlmCallRecorded, AgentToolCallRecorded, CircuitStateChanged, DeadLettered,
        DeadLetterRedriven, ApprovalDecided, SignalReceived, SignalDelivered,
        ToolApprovalRequested, StepResumed, BacktestRequested,
    )
}

# The events that end a step's attempt: the ones bend.core.transitions.STEP_ENDINGS names.
StepEnding = StepSucceeded | StepFailed | StepTimedOut | StepCancelled
