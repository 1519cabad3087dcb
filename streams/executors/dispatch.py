"""Run a scheduled step with the executor of its node type, within the step's timeout."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import structlog

from bend.core.commands import Command, RecordLlmCall, RecordToolCall
from bend.core.events import StepScheduled
from bend.security.redact import Redactor
from streams.executors import agent, http, tool
from streams.executors.context import ExecutionContext
from streams.executors.errors import StepError, RetryableStepError, StepTimeout, UnknownNodeType
from streams.executors.outcome import StepOutcome

__all__ = ["EXECUTORS", "execute"]

log = structlog.get_logger(__name__)

_GRACE_S = 0.5

Executor = Callable[[StepScheduled, ExecutionContext], Awaitable[StepOutcome]]

EXECUTORS: dict[str, Executor] = {
    "agent": agent.execute,
    "http": http.execute,
    "tool": tool.execute,
}


async def execute(task: StepScheduled, ctx: ExecutionContext) -> StepOutcome:
    """The step's outcome with every secret value of the run's project masked (an upstream may
    echo a key in an error or a body); never raises for the step's own failures."""
    outcome = await _execute(task, ctx)
    try:
        redactor = await ctx.secrets.redactor(task.project)
    except StepError as exc:  # nothing may leave unmasked: report no output, retry the step
        log.warning("outcome_not_redactable", error=exc.message)
        return StepOutcome.failure(exc)
    return redacted(outcome, redactor)


def _record(record: Command, redact: Redactor) -> Command:
    match record:
        case RecordLlmCall():
            return dataclasses.replace(record, request=redact(record.request),
                                       response=redact(record.response))
        case RecordToolCall():
            return dataclasses.replace(record, arguments=redact(record.arguments),
                                       result=redact(record.result),
                                       error=None if record.error is None
                                       else redact.text(record.error))
    return record


def redacted(outcome: StepOutcome, redact: Redactor) -> StepOutcome:
    """`outcome` with every value `redact` knows masked in its output, message and calls."""
    if not redact:
        return outcome
    return dataclasses.replace(
        outcome, output=redact(outcome.output),
        message=None if outcome.message is None else redact.text(outcome.message),
        records=tuple(_record(r, redact) for r in outcome.records))


async def _execute(task: StepScheduled, ctx: ExecutionContext) -> StepOutcome:
    """The step's outcome; never raises for the step's own failures (bugs become retryable)."""
    run = EXECUTORS.get(task.node_type)
    if run is None:
        return StepOutcome.failure(UnknownNodeType(task.node_type, sorted(EXECUTORS)))
    timeout_s = task.timeout_ms / 1000 if task.timeout_ms else None
    try:
        # A backstop: calls time out on their own first (an http request gets the step's
        # timeout), so their breaker counts the timeout; this catches the rest.
        async with asyncio.timeout(timeout_s + _GRACE_S if timeout_s else None):
            return await run(task, ctx)
    except TimeoutError:
        return StepOutcome.failure(StepTimeout(f"the {task.node_type} step", timeout_s or 0))
    except Exception as exc:  # an executor bug must not kill the worker; the policy retries
        log.exception("executor_crashed", node_type=task.node_type)
        error = RetryableStepError(f"the {task.node_type} executor crashed with "
                                   f"{type(exc).__name__}: {exc}; this is a Bend bug, report it")
        return StepOutcome(succeeded=False, error_type=type(exc).__name__,
                           message=error.message, retryable=True)
