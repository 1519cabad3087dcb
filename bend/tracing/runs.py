"""Spans of a run's life: commands sent and decided, step attempts and the run itself.

The run span and the step attempt spans have derived ids (bend.tracing.ids) and are recorded
by the orchestrator once they end, with the times of the events that opened and closed them,
so no process has to keep a span open across records, restarts or rebalances.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import cast

import structlog
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from bend.core.commands import Command
from bend.core.events import (
    Envelope, Event, RunFailed, StepEnding, StepFailed, StepScheduled,
    StepSucceeded, StepTimedOut,
)
from bend.core.state import RunState
from bend.core.transitions import RUN_ENDINGS, STEP_ENDINGS
from bend.tracing.ids import run_context, run_span_id, run_trace_id, step_context, step_span_id
from bend.tracing.propagation import KafkaHeaders, extract_kafka, inject_kafka
from bend.tracing.provider import Tracing, current, pinned_ids


__all__ = ["command_span", "kafka_headers", "record_decision", "record_headers", "run_parent",
           "task_headers"]

log = structlog.get_logger(__name__)


def _as_parent(span_context: SpanContext) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


def run_parent(run_id: str, ratio: float = 1.0) -> Context:
    """A context whose parent is the run's span (made or not yet made, anywhere)."""
    return _as_parent(run_context(run_id, ratio))


def _in_run_trace(run_id: str, context: Context, ratio: float) -> tuple[Context, list[Link]]:
    """`context` if it is in the run's trace; else the run span, linked to what `context` holds.

    A StartRun sent from inside another trace (a parent run's step, a traced API client) starts
    the run's own trace and keeps a link to where it came from.
    """
    remote = trace.get_current_span(context).get_span_context()
    if remote.is_valid and remote.trace_id == run_trace_id(run_id):
        return context, []
    return run_parent(run_id, ratio), ([Link(remote)] if remote.is_valid else [])


def _ids(record: Envelope) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {"bend.run_id": record.run_id or "",
                                        "bend.workflow_id": record.workflow_id,
                                        "bend.event_id": record.event_id,
                                        "bend.record_type": record.event_type}
    for name in ("step_id", "attempt"):
        value = getattr(record, name, None)
        if isinstance(value, (str, int)) and value != "":
            attributes[f"bend.{name}"] = value
    return attributes


def kafka_headers() -> list[tuple[str, bytes]] | None:
    """The current span's context as record headers; None while tracing is off."""
    if current() is None:
        return None
    return inject_kafka() or None


def record_headers(record: Envelope) -> list[tuple[str, bytes]] | None:
    """Headers for a command sent into a run from outside the engine (API, triggers, fork).

    A zero-length PRODUCER span `send <Command>` in the run's trace marks the send; the
    orchestrator's span for the command is its child. None while tracing is off.
    """
    tracing = current()
    if (tracing is None or not isinstance(record, Command) or not record.run_id
            or not tracing.keeps(record.run_id)):
        return None
    parent, links = _in_run_trace(record.run_id, context_api.get_current(), tracing.ratio)
    span = tracing.tracer.start_span(f"send {record.event_type}", context=parent, links=links,
                                     kind=SpanKind.PRODUCER, attributes=_ids(record))
    span.end()
    return inject_kafka(trace.set_span_in_context(span)) or None


_OFF = contextlib.nullcontext()


def command_span(cmd: Command, headers: KafkaHeaders | None
                 ) -> contextlib.AbstractContextManager[object]:
    """The orchestrator's span `decide <Command>` around one command, in the command's run trace.

    Its parent is the record's `traceparent` when that is in the run's trace (the executor's
    step span, the API's send), else the run span (a timer, a sender with tracing off).
    """
    tracing = current()
    if tracing is None or not cmd.run_id or not tracing.keeps(cmd.run_id):
        return _OFF  # tracing off costs a call and a check
    return _command_span(tracing, cmd, headers)


@contextlib.contextmanager
def _command_span(tracing: Tracing, cmd: Command, headers: KafkaHeaders | None
                  ) -> Iterator[None]:
    assert cmd.run_id is not None
    parent, links = _in_run_trace(cmd.run_id, extract_kafka(headers), tracing.ratio)
    with tracing.tracer.start_as_current_span(f"decide {cmd.event_type}", context=parent,
                                              links=links, kind=SpanKind.CONSUMER,
                                              attributes=_ids(cmd)):
        yield


def task_headers(task: StepScheduled) -> list[tuple[str, bytes]] | None:
    """A task record's headers: the step attempt's span, parent of the executor's spans.

    Derived from the task alone, so a task re-dispatched after a restart carries the same.
    """
    tracing = current()
    if tracing is None or not tracing.keeps(task.run_id or ""):
        return None
    return inject_kafka(_as_parent(step_context(task.run_id or "", task.step_id, task.attempt,
                                                tracing.ratio)))


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


def _record(tracing: Tracing, name: str, trace_id: int, span_id: int, parent: Context,
            start: datetime, end: datetime, attributes: dict[str, str | int],
            error: str | None, links: list[Link] | None = None) -> None:
    """Record a span that began at `start` and ended at `end`, with the ids given."""
    with pinned_ids(trace_id, span_id):
        span = tracing.tracer.start_span(name, context=parent, start_time=_ns(start),
                                         attributes=attributes, links=links or ())
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=_ns(max(start, end)))




def _step_outcome(ev: Event) -> tuple[str, str | None]:
    match ev:
        case StepSucceeded():
            return "succeeded", None
        case StepFailed(error_type=error_type, message=message):
            return "failed", f"{error_type}: {message}"
        case StepTimedOut(timeout_ms=timeout_ms):
            return "timed_out", f"timed out after {timeout_ms} ms"
        case _:
            return "cancelled", None


def record_decision(before: RunState | None, state: RunState | None,
                    events: tuple[Event, ...]) -> None:
    """Record the step attempt spans and the run span that the decided `events` end."""
    tracing = current()
    if tracing is None or state is None or not tracing.keeps(state.run_id):
        return
    try:
        _record_decision(tracing, before, state, events)
    except Exception:  # traces never stop a run
        log.exception("tracing_failed")


def _record_decision(tracing: Tracing, before: RunState | None, state: RunState,
                     events: tuple[Event, ...]) -> None:
    trace.get_current_span().set_attribute("bend.events", len(events))
    run_id = state.run_id
    trace_id = run_trace_id(run_id)
    run_ctx = run_parent(run_id, tracing.ratio)
    scheduled = {(ev.step_id, ev.attempt): ev.occurred_at
                 for ev in events if isinstance(ev, StepScheduled)}
    done: set[tuple[str, int]] = set()
    for ev in events:
        if ev.event_type in STEP_ENDINGS:
            ev = cast("StepEnding", ev)
            step = state.steps.get(ev.step_id)
            earlier = before.steps.get(ev.step_id) if before is not None else None
            attempt = getattr(ev, "attempt", None) or (step.attempt if step else 0)
            start = scheduled.get((ev.step_id, attempt)) or (
                earlier.scheduled_at if earlier and earlier.attempt == attempt else None)
            if start is None or (ev.step_id, attempt) in done:
                continue  # never dispatched (cancelled while pending), or recorded already
            done.add((ev.step_id, attempt))
            outcome, error = _step_outcome(ev)
            _record(tracing, f"step {ev.step_id}", trace_id,
                    step_span_id(run_id, ev.step_id, attempt), run_ctx, start, ev.occurred_at,
                    {"bend.run_id": run_id, "bend.workflow_id": state.workflow_id,
                     "bend.step_id": ev.step_id, "bend.attempt": attempt,
                     "bend.node_type": step.node_type if step else "",
                     "bend.step.outcome": outcome}, error)
        elif ev.event_type in RUN_ENDINGS:
            start = state.started_at or state.requested_at or ev.occurred_at
            error = f"{ev.error_type}: {ev.message}" if isinstance(ev, RunFailed) else None
            links = ([Link(run_context(state.parent_run_id, tracing.ratio))]
                     if state.parent_run_id else [])
            _record(tracing, f"run {state.workflow_id}", trace_id, run_span_id(run_id),
                    Context(), start, ev.occurred_at,
                    {"bend.run_id": run_id, "bend.workflow_id": state.workflow_id,
                     "bend.workflow_version": state.workflow_version,
                     "bend.run.status": state.status.value}, error, links)
