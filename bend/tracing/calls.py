"""The executor's spans: one per task it runs, and one per LLM, tool and HTTP call inside."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from bend.core.events import StepScheduled
from bend.tracing.ids import run_trace_id, step_context
from bend.tracing.propagation import KafkaHeaders, extract_kafka
from bend.tracing.provider import Tracing, current

__all__ = ["call_span", "component_span", "http_attributes", "note_http_status", "note_llm_usage",
           "note_step_outcome", "task_span"]


_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


def task_span(task: StepScheduled, headers: KafkaHeaders | None
              ) -> contextlib.AbstractContextManager[Span | None]:
    """`execute <node type>` around one task: a child of the step attempt's span.

    The parent is the task record's `traceparent`; a record without one (an orchestrator with
    tracing off) gets the same parent derived from the task's ids.
    """
    tracing = current()
    if tracing is None or not tracing.keeps(task.run_id or ""):
        return _OFF  # tracing off costs a call and a check
    return _task_span(tracing, task, headers)


@contextlib.contextmanager
def _task_span(tracing: Tracing, task: StepScheduled, headers: KafkaHeaders | None
               ) -> Iterator[Span | None]:
    parent = extract_kafka(headers)
    remote = trace.get_current_span(parent).get_span_context()
    if not remote.is_valid or remote.trace_id != run_trace_id(task.run_id or ""):
        parent = trace.set_span_in_context(trace.NonRecordingSpan(step_context(
            task.run_id or "", task.step_id, task.attempt, tracing.ratio)))
    attributes: dict[str, AttributeValue] = {
        "bend.run_id": task.run_id or "", "bend.workflow_id": task.workflow_id,
        "bend.step_id": task.step_id, "bend.attempt": task.attempt,
        "bend.node_type": task.node_type, "bend.event_id": task.event_id}
    with tracing.tracer.start_as_current_span(f"execute {task.node_type}", context=parent,
                                              kind=SpanKind.CONSUMER,
                                              attributes=attributes) as span:
        yield span


def call_span(name: str, attributes: Mapping[str, Any] | None = None,
              kind: SpanKind = SpanKind.CLIENT) -> contextlib.AbstractContextManager[Span | None]:
    """A span around one call (LLM, tool, HTTP) under the current one; nothing while off.

    An exception leaving it marks the span failed and is recorded on it.
    """
    tracing = current()
    if tracing is None:
        return _OFF
    return tracing.tracer.start_as_current_span(name, kind=kind,
                                                attributes=dict(attributes or {}))


def component_span(ref: str) -> contextlib.AbstractContextManager[Span | None]:
    """`tool <ref>` around one component call (a tool step's, or an agent's tool call)."""
    return call_span(f"tool {ref}", {"bend.component": ref}, SpanKind.INTERNAL)


def http_attributes(method: str, url: str) -> dict[str, Any]:
    """HTTP client attributes of a request, without its query string (it may hold secrets)."""
    parts = urlsplit(str(url))
    attributes: dict[str, Any] = {"http.request.method": method,
                                  "url.full": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
                                              f"{parts.path}",
                                  "server.address": parts.hostname or ""}
    if parts.port:
        attributes["server.port"] = parts.port
    return attributes


def note_step_outcome(succeeded: bool, error_type: str | None, message: str | None) -> None:
    """Mark the current (execute) span failed when the step's attempt failed."""
    if current() is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("bend.step.outcome", "succeeded" if succeeded else "failed")
    if not succeeded:
        span.set_status(Status(StatusCode.ERROR, f"{error_type or 'StepError'}: {message or ''}"))


def note_http_status(status: int) -> None:
    """Put a response's status on the current span; 4xx and 5xx mark a client span failed."""
    if current() is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


def note_llm_usage(response: Mapping[str, Any]) -> None:
    """Put a chat completion's model, tokens and finish reason on the current span."""
    if current() is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    usage = response.get("usage") or {}
    span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("prompt_tokens") or 0))
    span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("completion_tokens") or 0))
    if response.get("model"):
        span.set_attribute("gen_ai.response.model", str(response["model"]))
    try:
        reason = response["choices"][0].get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        reason = None
    if reason:
        span.set_attribute("gen_ai.response.finish_reasons", [str(reason)])
