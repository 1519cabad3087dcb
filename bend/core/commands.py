"""Requests sent to a run's orchestrator; imperative, decided into events or rejected.

Commands share the events' envelope (`seq` stays 0: only the orchestrator sequences a run)
and travel on the commands topic keyed by `run_id`, so one run's commands stay in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bend.core.events import Envelope, json_field

__all__ = [
    "Command", "COMMAND_TYPES", "StartRun", "CancelRun", "CancelStep", "ReportStepStarted",
    "CompleteStep", "FailStep", "FireTimer", "RecordLlmCall", "RecordToolCall", "DecideApproval",
    "SignalRun", "AwaitToolApproval",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Command(Envelope):
    """A request to change a run; `run_id` is required."""

    topic_kind: ClassVar[str] = "commands"


@dataclass(frozen=True, kw_only=True, slots=True)
class StartRun(Command):
    """Start a run of `workflow_id` at `workflow_version` (`definition`, whole) with `input`."""

    input: Any = json_field()
    definition: Any = json_field()
    idempotency_key: str | None = None
    trigger_id: str | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    forked_from_run_id: str | None = None
    fork_step_id: str | None = None
    seed: Any = json_field()  # a fork's reused outputs by step id (bend.core.fork.fork_seed)
    backtest_id: str | None = None  # the backtest this run belongs to, if any
    # A backtest's recorded outputs of the impure steps after fork_step_id, by step instance
    # (bend.core.fork.replayed_outputs); None: those steps run for real.
    replayed: Any = json_field()


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelRun(Command):
    """Cancel the run and every step still open in it."""

    reason: str = ""
    requested_by: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelStep(Command):
    """Cancel one open step."""

    step_id: str
    reason: str = ""
    requested_by: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportStepStarted(Command):
    """An executor began the step's attempt."""

    step_id: str
    attempt: int = 1
    worker_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CompleteStep(Command):
    """An executor finished the step's attempt with `output`."""

    step_id: str
    attempt: int = 1
    output: Any = json_field()
    duration_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class FailStep(Command):
    """An executor's attempt failed; `retryable` is false for errors no retry can fix."""

    step_id: str
    attempt: int = 1
    error_type: str
    message: str
    retryable: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class FireTimer(Command):
    """A durable timer of the run came due."""

    timer_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordLlmCall(Command):
    """Record one chat-completions call made by an agent step."""

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
class RecordToolCall(Command):
    """Record one tool call made by an agent step."""

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
class DecideApproval(Command):
    """Approve (with `answer`, the step's output) or reject the approval step `step_id`.

    Who may decide is checked before it is sent (bend.services.approvals); `decided_by` records it.
    With `tool_call_id`, it decides that gated tool call of the agent step `step_id` instead.
    """

    step_id: str
    approved: bool
    decided_by: str = ""
    comment: str = ""
    answer: Any = json_field()
    tool_call_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AwaitToolApproval(Command):
    """An agent step's model called a gated tool: pause the attempt until a person decides.

    `checkpoint` is where the agent loop stands (its messages, the calls still to run, its
    counters); the attempt resumes from it once the call is approved or rejected.
    """

    step_id: str
    attempt: int = 1
    tool_call_id: str
    tool_name: str
    arguments: Any = json_field()
    checkpoint: Any = json_field()


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalRun(Command):
    """Send the run the signal `name` with `payload`; a wait step for `name` takes it."""

    name: str
    payload: Any = json_field()
    sent_by: str = ""


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        StartRun, CancelRun, CancelStep, ReportStepStarted, CompleteStep, FailStep,
        FireTimer, RecordLlmCall, RecordToolCall, DecideApproval, SignalRun, AwaitToolApproval,
    )
}
