"""Cross-cutting concerns around the orchestrator's decisions and the executor's tasks, as
wrappers (Temporal's worker interceptors are the model): the orchestrator decides through
`wrap(decide, interceptors)` and reports what it did with commands it did not decide; the
executor runs each task inside `around_task(interceptors)` and reports how it settled. Metrics
and tracing are interceptors, not lines written into either hot path.

An interceptor wraps `decide` once, when the orchestrator is built (no per-command allocation);
`handled` hears of commands settled without a decision: dead-lettered before deciding, rejected
for a finished run, a redelivery whose outbox is sent again, a record forwarded to its run's
partition. `task` is entered around one task's run and reports (a span), and `settled` hears
how the task ended: succeeded, failed, paused (a gated tool call), cancelled (withdrawn before
or while it ran) or withheld (the worker was fenced out while it ran).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from bend.core.commands import Command
from bend.core.draft import Decision, Rejected
from bend.core.events import StepScheduled
from bend.core.state import RunState
from bend.ops.metrics import COMMANDS, EXECUTOR_STEPS, observe_decision, observe_llm_calls
from bend.settings import LlmPrice
from bend.tracing import note_step_outcome, record_decision, task_span
from bend.tracing.propagation import KafkaHeaders

__all__ = [
    "AroundTask", "Attempt", "Decide", "Interceptor", "MetricsInterceptor", "Settled",
    "TracingInterceptor", "around_task", "default_interceptors", "handled_by", "settled_by",
    "wrap",
]

log = structlog.get_logger(__name__)

Decide = Callable[[RunState | None, Command, datetime], Decision]
Around = contextlib.AbstractContextManager[object]
AroundTask = Callable[[StepScheduled, KafkaHeaders | None], Around]
_REPORTED = frozenset({"succeeded", "failed", "paused"})  # settled results whose attempt reports


class Attempt(Protocol):
    """What an executor's attempt produced, as `settled` reads it (streams' StepOutcome)."""

    @property
    def succeeded(self) -> bool: ...
    @property
    def error_type(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def records(self) -> tuple[Command, ...]: ...


Settled = Callable[[StepScheduled, str, Attempt | None], None]


class Interceptor:
    """Passes everything through; a concern overrides what it watches."""

    def decide(self, next_decide: Decide) -> Decide:
        """`next_decide` wrapped (called once, when the orchestrator is built)."""
        return next_decide

    def handled(self, command_type: str, outcome: str) -> None:
        """A command settled without a decision (`outcome`: dead_lettered, rejected,
        redelivered, forwarded)."""

    def task(self, task: StepScheduled, headers: KafkaHeaders | None) -> Around:
        """Entered around one executor task: its run and its reports."""
        return _NOTHING

    def settled(self, task: StepScheduled, result: str, attempt: Attempt | None) -> None:
        """How an executor task ended (`result`: succeeded, failed, paused, cancelled,
        withheld); `attempt` is what it produced, None if it never ended."""


_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


class MetricsInterceptor(Interceptor):
    """`bend_commands` by type and result, and what each accepted decision did to runs and
    steps; `bend_executor_steps` by node type and result, and the LLM calls of each attempt
    that reports (bend.ops.metrics)."""

    def __init__(self, prices: Mapping[str, LlmPrice] | None = None) -> None:
        self.prices: Mapping[str, LlmPrice] = prices or {}

    def decide(self, next_decide: Decide) -> Decide:
        def decide(before: RunState | None, cmd: Command, now: datetime) -> Decision:
            try:
                decision = next_decide(before, cmd, now)
            except Exception:
                COMMANDS.labels(cmd.event_type, "dead_lettered").inc()
                raise
            if isinstance(decision, Rejected):
                COMMANDS.labels(cmd.event_type, "rejected").inc()
                return decision
            COMMANDS.labels(cmd.event_type, "accepted").inc()
            try:
                assert decision.state is not None
                observe_decision(before, decision.state, decision.events)
            except Exception:  # metrics never stop a run
                log.exception("metrics_failed")
            return decision

        return decide

    def handled(self, command_type: str, outcome: str) -> None:
        COMMANDS.labels(command_type, outcome).inc()

    def settled(self, task: StepScheduled, result: str, attempt: Attempt | None) -> None:
        if attempt is not None and result in _REPORTED:
            observe_llm_calls(attempt.records, self.prices)
        EXECUTOR_STEPS.labels(task.node_type, result).inc()


class TracingInterceptor(Interceptor):
    """The step-attempt and run spans each accepted decision ends, and the executor's
    `execute <node type>` span around each task, failed when its attempt failed
    (bend.tracing)."""

    def decide(self, next_decide: Decide) -> Decide:
        def decide(before: RunState | None, cmd: Command, now: datetime) -> Decision:
            decision = next_decide(before, cmd, now)
            if not isinstance(decision, Rejected):
                record_decision(before, decision.state, decision.events)
            return decision

        return decide

    def task(self, task: StepScheduled, headers: KafkaHeaders | None) -> Around:
        return task_span(task, headers)

    def settled(self, task: StepScheduled, result: str, attempt: Attempt | None) -> None:
        if attempt is not None and result in ("succeeded", "failed"):
            note_step_outcome(attempt.succeeded, attempt.error_type, attempt.message)


def default_interceptors(prices: Mapping[str, LlmPrice] | None = None
                         ) -> tuple[Interceptor, ...]:
    """Metrics (costing LLM calls at `prices`), then tracing: what every orchestrator and
    executor runs with unless told otherwise."""
    return (MetricsInterceptor(prices), TracingInterceptor())


def wrap(decide: Decide, interceptors: Sequence[Interceptor]) -> Decide:
    """`decide` inside every interceptor, the first outermost."""
    for interceptor in reversed(interceptors):
        decide = interceptor.decide(decide)
    return decide


def handled_by(interceptors: Sequence[Interceptor]) -> Callable[[str, str], None]:
    """One callable telling every interceptor that watches them of commands not decided."""
    hooks = tuple(i.handled for i in interceptors
                  if type(i).handled is not Interceptor.handled)
    if len(hooks) == 1:
        return hooks[0]

    def handled(command_type: str, outcome: str) -> None:
        for hook in hooks:
            hook(command_type, outcome)

    return handled


def around_task(interceptors: Sequence[Interceptor]) -> AroundTask:
    """One context manager factory entering every interceptor's `task`, the first outermost."""
    hooks = tuple(i.task for i in interceptors if type(i).task is not Interceptor.task)
    if len(hooks) == 1:
        return hooks[0]

    @contextlib.contextmanager
    def around(task: StepScheduled, headers: KafkaHeaders | None) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for hook in hooks:
                stack.enter_context(hook(task, headers))
            yield

    return around


def settled_by(interceptors: Sequence[Interceptor]) -> Settled:
    """One callable telling every interceptor that watches them how executor tasks ended."""
    hooks = tuple(i.settled for i in interceptors
                  if type(i).settled is not Interceptor.settled)
    if len(hooks) == 1:
        return hooks[0]

    def settled(task: StepScheduled, result: str, attempt: Attempt | None) -> None:
        for hook in hooks:
            hook(task, result, attempt)

    return settled
