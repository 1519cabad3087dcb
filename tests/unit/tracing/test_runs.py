"""A run's trace: derived ids, the orchestrator's command spans, step and run spans it records."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from bend.core.commands import CompleteStep, FailStep, FireTimer, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, load_definition
from bend.core.events import StepScheduled
from bend.core.state import RunState
from bend.settings import Settings, TracingSettings
from bend.tracing import (
    command_span, configure_tracing, extract_kafka, inject_kafka, kafka_headers, record_decision,
    record_headers, shutdown_tracing, task_headers, task_span,
)
from bend.tracing.ids import (
    is_sampled, run_context, run_span_id, run_trace_id, step_context, step_span_id,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
RUN = "5f0c6a34-1b0e-4c3e-9d4e-2a51f3e0c001"
WORKFLOW = """
name: t
steps:
  - id: a
    type: tool
    component: noop@1
    retry: {max_attempts: 2, initial_interval: 1s, jitter: 0}
  - id: b
    type: tool
    component: noop@1
    after: [a]
"""


def _envelope(n: int, at: datetime) -> dict:
    return {"event_id": f"cmd-{n}", "run_id": RUN, "workflow_id": "wf", "occurred_at": at}


def test_a_uuid_run_id_is_its_trace_id_and_other_ids_are_hashed_stably() -> None:
    assert run_trace_id(RUN) == uuid.UUID(RUN).int
    assert run_trace_id("order-42") == run_trace_id("order-42") != run_trace_id("order-43")
    assert run_trace_id("order-42") > 0
    assert step_span_id(RUN, "a", 1) != step_span_id(RUN, "a", 2) != run_span_id(RUN)
    assert step_context(RUN, "a", 1).trace_id == run_context(RUN).trace_id == uuid.UUID(RUN).int


def test_sampling_is_a_fair_and_repeatable_choice_of_runs_even_for_uuid_ids() -> None:
    ids = [run_trace_id(str(uuid.uuid4())) for _ in range(4000)]
    kept = [i for i in ids if is_sampled(i, 0.25)]
    assert 0.20 < len(kept) / len(ids) < 0.30
    assert kept == [i for i in ids if is_sampled(i, 0.25)]
    assert all(is_sampled(i, 1.0) for i in ids[:10])
    assert not any(is_sampled(i, 0.0) for i in ids[:10])
    assert not run_context(RUN, 0.0).trace_flags.sampled


def test_a_command_with_the_runs_traceparent_is_decided_under_that_span(
        spans: InMemorySpanExporter) -> None:
    sender = SpanContext(run_trace_id(RUN), 0x1234, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    headers = inject_kafka(trace.set_span_in_context(NonRecordingSpan(sender)))
    cmd = CompleteStep(**_envelope(1, T0), step_id="a", attempt=1)
    with command_span(cmd, headers):
        pass
    [span] = spans.get_finished_spans()
    assert span.name == "decide CompleteStep" and span.kind is SpanKind.CONSUMER
    assert span.context.trace_id == run_trace_id(RUN) and span.parent.span_id == 0x1234
    assert span.attributes["bend.run_id"] == RUN and span.attributes["bend.step_id"] == "a"


def test_a_command_from_another_trace_or_none_is_decided_under_the_run_span(
        spans: InMemorySpanExporter) -> None:
    foreign = SpanContext(0xABC, 0xDEF, is_remote=True,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    cmd = CompleteStep(**_envelope(1, T0), step_id="a", attempt=1)
    with command_span(cmd, inject_kafka(trace.set_span_in_context(NonRecordingSpan(foreign)))):
        outbound = dict(kafka_headers() or [])
    with command_span(cmd, None):
        pass
    linked, plain = spans.get_finished_spans()
    for span in (linked, plain):
        assert span.context.trace_id == run_trace_id(RUN)
        assert span.parent.span_id == run_span_id(RUN)
    assert [link.context.span_id for link in linked.links] == [0xDEF] and not plain.links
    assert extract_kafka(outbound.items()) is not None
    assert outbound["traceparent"].decode().split("-")[2] == f"{linked.context.span_id:016x}"


def test_a_start_run_sent_from_outside_carries_a_send_span_in_the_runs_trace(
        spans: InMemorySpanExporter) -> None:
    start = StartRun(**_envelope(1, T0), definition=None)
    headers = record_headers(start)
    [send] = spans.get_finished_spans()
    assert send.name == "send StartRun" and send.kind is SpanKind.PRODUCER
    assert send.parent.span_id == run_span_id(RUN)
    received = trace.get_current_span(extract_kafka(headers)).get_span_context()
    assert (received.trace_id, received.span_id) == (run_trace_id(RUN), send.context.span_id)


def _drive(spans: InMemorySpanExporter) -> tuple[list[Accepted], RunState]:
    """Start the run, fail a's first attempt, retry, succeed a and b; record like the orchestrator."""
    definition = definition_json(load_definition(WORKFLOW))
    state: RunState | None = None
    decisions: list[Accepted] = []
    at = T0

    def send(cmd) -> None:  # noqa: ANN001
        nonlocal state
        decision = decide(state, cmd, cmd.occurred_at)
        assert isinstance(decision, Accepted), decision
        record_decision(state, decision.state, decision.events)
        decisions.append(decision)
        state = decision.state

    send(StartRun(**_envelope(1, at), definition=definition))
    at += timedelta(seconds=1)
    send(FailStep(**_envelope(2, at), step_id="a", attempt=1, error_type="Boom", message="no"))
    [timer] = [t for t in state.timers.values() if t.purpose == "retry"]
    at = max(at, timer.fire_at) + timedelta(seconds=1)
    send(FireTimer(**_envelope(3, at), timer_id=timer.timer_id))
    at += timedelta(seconds=2)
    send(CompleteStep(**_envelope(4, at), step_id="a", attempt=2, output={}))
    at += timedelta(seconds=3)
    send(CompleteStep(**_envelope(5, at), step_id="b", attempt=1, output={"done": True}))
    assert state is not None and state.is_finished
    return decisions, state


def test_each_step_attempt_and_the_run_get_a_span_with_derived_ids_and_event_times(
        spans: InMemorySpanExporter) -> None:
    decisions, state = _drive(spans)
    by_name = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    a1, a2 = sorted(by_name["step a"], key=lambda s: s.attributes["bend.attempt"])
    [b] = by_name["step b"]
    [run] = by_name["run wf"]
    assert run.parent is None and run.context.span_id == run_span_id(RUN)
    assert run.context.trace_id == uuid.UUID(RUN).int
    assert run.attributes["bend.run.status"] == "completed"
    for step, attempt in ((a1, 1), (a2, 2), (b, 1)):
        step_id = step.attributes["bend.step_id"]
        assert step.parent.span_id == run_span_id(RUN)
        assert step.context.span_id == step_span_id(RUN, step_id, attempt)
        assert step.attributes["bend.node_type"] == "tool"
    assert a1.status.status_code is StatusCode.ERROR and "Boom" in a1.status.description
    assert a1.attributes["bend.step.outcome"] == "failed"
    assert a2.attributes["bend.step.outcome"] == "succeeded"
    # times are the events': dispatch to end
    assert a1.start_time == int(T0.timestamp() * 1e9)
    assert a1.end_time == a1.start_time + 1_000_000_000
    assert b.end_time - b.start_time == 3_000_000_000
    assert run.start_time == a1.start_time and run.end_time == b.end_time
    # the task records carry the very span a step's attempt gets
    tasks = [ev for d in decisions for ev in d.tasks()]
    assert [(t.step_id, t.attempt) for t in tasks] == [("a", 1), ("a", 2), ("b", 1)]
    for task, step in zip(tasks, (a1, a2, b), strict=False):
        carried = trace.get_current_span(extract_kafka(task_headers(task))).get_span_context()
        assert (carried.trace_id, carried.span_id) == (step.context.trace_id,
                                                       step.context.span_id)


def test_task_headers_are_the_same_after_a_restart(spans: InMemorySpanExporter) -> None:
    task = StepScheduled(event_id="e", run_id=RUN, workflow_id="wf", occurred_at=T0,
                         step_id="a", node_type="tool", attempt=3)
    assert task_headers(task) == task_headers(task)
    assert dict(task_headers(task))["traceparent"].decode() == (
        f"00-{uuid.UUID(RUN).hex}-{step_span_id(RUN, 'a', 3):016x}-01")


def test_a_run_left_out_by_the_sample_ratio_gets_no_span_and_no_header() -> None:
    exporter = InMemorySpanExporter()
    settings = Settings().model_copy(update={"tracing": TracingSettings(sample_ratio=0.5)})
    configure_tracing(settings, "test", exporter=exporter)
    try:
        runs = [str(uuid.uuid4()) for _ in range(40)]
        kept = [r for r in runs if is_sampled(run_trace_id(r), 0.5)]
        dropped = [r for r in runs if r not in kept]
        assert kept and dropped
        for run_id in runs:
            task = StepScheduled(event_id="e", run_id=run_id, workflow_id="wf", occurred_at=T0,
                                 step_id="a", node_type="tool")
            assert (task_headers(task) is None) == (run_id in dropped)
            with task_span(task, None):
                assert (kafka_headers() is None) == (run_id in dropped)
        assert {s.attributes["bend.run_id"] for s in exporter.get_finished_spans()} == set(kept)
    finally:
        shutdown_tracing()
