"""Cross-cutting concerns around the orchestrator's decisions, as wrappers (Temporal's worker
interceptors are the model): the orchestrator decides through `wrap(decide, interceptors)` and
reports what it did with commands it did not decide; metrics and tracing are interceptors, not
lines written into its hot path.

An interceptor wraps `decide` once, when the orchestrator is built (no per-command allocation);
`handled` hears of commands settled without a decision: dead-lettered before deciding, rejected
for a finished run, a redelivery whose outbox is sent again, a record forwarded to its run's
partition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from bend.core.commands import Command
from bend.core.draft import Decision, Rejected
from bend.core.state import RunState
from bend.ops.metrics import COMMANDS, observe_decision
from bend.tracing import record_decision

__all__ = [
    "Decide", "Interceptor", "MetricsInterceptor", "TracingInterceptor", "default_interceptors",
    "handled_by", "wrap",
]

log = structlog.get_logger(__name__)

Decide = Callable[[RunState | None, Command, datetime], Decision]


class Interceptor:
    """Passes everything through; a concern overrides what it watches."""

    def decide(self, next_decide: Decide) -> Decide:
        """`next_decide` wrapped (called once, when the orchestrator is built)."""
        return next_decide

    def handled(self, command_type: str, outcome: str) -> None:
        """A command settled without a decision (`outcome`: dead_lettered, rejected,
        redelivered, forwarded)."""


class MetricsInterceptor(Interceptor):
    """`bend_commands` by type and result, and what each accepted decision did to runs and
    steps (bend.ops.metrics)."""

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


class TracingInterceptor(Interceptor):
    """The step-attempt and run spans each accepted decision ends (bend.tracing)."""

    def decide(self, next_decide: Decide) -> Decide:
        def decide(before: RunState | None, cmd: Command, now: datetime) -> Decision:
            decision = next_decide(before, cmd, now)
            if not isinstance(decision, Rejected):
                record_decision(before, decision.state, decision.events)
            return decision

        return decide


def default_interceptors() -> tuple[Interceptor, ...]:
    """Metrics, then tracing: what every orchestrator runs with unless told otherwise."""
    return (MetricsInterceptor(), TracingInterceptor())


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
