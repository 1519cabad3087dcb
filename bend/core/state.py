"""A run's state, folded from its events: frozen values whose mappings cannot be mutated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from bend.core.budgets import LlmUsage
from bend.core.definitions import WorkflowDefinition
from bend.core.frozen import FrozenMap
from bend.core.graph import Plan

__all__ = [
    "KeptSignal", "PendingToolCall", "RunError", "RunState", "RunStatus", "StepError",
    "StepState", "StepStatus", "Timer",
]


class RunStatus(str, Enum):
    """Where a run stands; completed, failed and cancelled are final."""

    REQUESTED = "requested"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether nothing can happen to the run any more."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class StepStatus(str, Enum):
    """Where a step instance stands; pending instances have no record in the state yet."""

    PENDING = "pending"
    SCHEDULED = "scheduled"  # an attempt is handed out (or a container is under way)
    RUNNING = "running"  # an executor reported it started the attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # final unless a StepRetryScheduled follows in the same decision
    TIMED_OUT = "timed_out"  # likewise
    RETRY_WAIT = "retry_wait"  # waiting for the retry timer
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the instance is done for good (as far as its dependents are concerned)."""
        return self in _FINISHED

    @property
    def open(self) -> bool:
        """Whether the instance has begun and not finished: it can be cancelled."""
        return self in (StepStatus.SCHEDULED, StepStatus.RUNNING, StepStatus.RETRY_WAIT)

    @property
    def attempt_open(self) -> bool:
        """Whether an attempt is out with an executor (or a timer, or a child run)."""
        return self in (StepStatus.SCHEDULED, StepStatus.RUNNING)


_FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.TIMED_OUT,
                       StepStatus.SKIPPED, StepStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class StepError:
    """Why an attempt failed."""

    error_type: str
    message: str
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class PendingToolCall:
    """A gated tool call an agent step's attempt waits on: a person approves or rejects it."""

    tool_call_id: str
    tool_name: str
    arguments: Any = None
    approvers: Any = None  # {"roles": [...], "keys": [...]}
    checkpoint: Any = None  # where the agent loop stands (bend.core.gates)
    requested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StepState:
    """One step instance (`fetch`, or `fetch[3]` inside a loop) and its latest attempt."""

    step_id: str
    status: StepStatus = StepStatus.PENDING
    node_type: str = ""
    attempt: int = 0
    input: Any = None  # the latest attempt's evaluated input (JSON)
    output: Any = None
    error: StepError | None = None
    reason: str = ""  # why it was skipped or cancelled
    worker_id: str = ""
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retry_at: datetime | None = None
    awaiting: PendingToolCall | None = None  # an agent attempt paused on a gated tool call


@dataclass(frozen=True, slots=True)
class Timer:
    """A durable timer that has been set and has neither fired nor been disarmed."""

    timer_id: str
    purpose: str  # delay | retry | step_timeout | run_timeout
    fire_at: datetime
    step_id: str | None = None


@dataclass(frozen=True, slots=True)
class KeptSignal:
    """A signal received and not yet taken by a wait step."""

    signal_id: str  # its SignalReceived's event_id
    name: str
    payload: Any = None
    sent_by: str = ""
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunError:
    """Why a run failed."""

    error_type: str
    message: str
    step_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunState:
    """A run: its pinned definition, input, status, step instances and pending timers."""

    run_id: str
    workflow_id: str
    status: RunStatus
    seq: int
    workflow_version: int = 0
    tenant: str = "default"
    project: str = "default"
    correlation_id: str | None = None
    definition: WorkflowDefinition | None = None  # None when the requested one was invalid
    plan: Plan | None = field(default=None, compare=False, repr=False)  # derived from it
    input: Any = None
    steps: FrozenMap[str, StepState] = field(default_factory=FrozenMap)
    timers: FrozenMap[str, Timer] = field(default_factory=FrozenMap)
    signals: tuple[KeptSignal, ...] = ()  # received, not yet taken, in arrival order
    output: Any = None
    error: RunError | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    idempotency_key: str | None = None
    trigger_id: str | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    forked_from_run_id: str | None = None
    fork_step_id: str | None = None
    backtest_id: str | None = None
    replayed: Any = None  # a backtest's recorded outputs after fork_step_id (bend.core.fork)
    decided: frozenset[str] = frozenset()  # ids of the commands already decided (redeliveries)
    open_ids: frozenset[str] = frozenset()  # instances begun and not finished (an index)
    usage: LlmUsage = LlmUsage()  # the LLM calls recorded so far (bend.core.budgets)

    @property
    def is_finished(self) -> bool:
        """Whether the run completed, failed or was cancelled."""
        return self.status.finished

    def step(self, step_id: str) -> StepState:
        """The instance's state; a pending placeholder if nothing happened to it yet."""
        found = self.steps.get(step_id)
        return found if found is not None else StepState(step_id=step_id)

    def kept_signal(self, name: str) -> KeptSignal | None:
        """The earliest kept signal named `name`, if any."""
        return next((s for s in self.signals if s.name == name), None)

    def open_steps(self) -> list[StepState]:
        """Instances that have begun and not finished, in the order they began."""
        return [s for s in self.steps.values() if s.step_id in self.open_ids]
