"""What bend.tracing's hooks cost per step: off (the default), and on with spans dropped or kept.

One step's hooks are the orchestrator's (a command span, the decision's spans, the task's
headers) and the executor's (its task span, the outcome, one tool call, the report's headers).
The figure is microseconds per step, measured in this process with no Kafka or I/O; compare it
with the engine's per-step overhead from bench/engine.py (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bend.core.commands import CompleteStep, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, load_definition
from bend.settings import Settings, TracingSettings
from bend.tracing import (
    command_span, component_span, configure_tracing, kafka_headers, note_step_outcome,
    record_decision, shutdown_tracing, task_headers, task_span,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
RUN = "5f0c6a34-1b0e-4c3e-9d4e-2a51f3e0c001"


class _Discard(SpanExporter):
    """Takes spans and drops them: the cost of making spans, not of sending them."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _decisions() -> tuple[Accepted, Accepted]:
    """A one-step run's start and its step's completion, decided by the real core."""
    definition = definition_json(load_definition(
        "name: t\nsteps:\n  - {id: a, type: tool, component: noop@1}\n"))
    env = {"run_id": RUN, "workflow_id": "wf"}
    start = decide(None, StartRun(event_id="c1", occurred_at=T0, definition=definition, **env),
                   T0)
    assert isinstance(start, Accepted)
    done_at = T0 + timedelta(seconds=1)
    done = decide(start.state, CompleteStep(event_id="c2", occurred_at=done_at, step_id="a",
                                            attempt=1, output={}, **env), done_at)
    assert isinstance(done, Accepted)
    return start, done


def _one_step(start: Accepted, done: Accepted) -> None:
    """The hooks one step runs through, in both processes."""
    [task] = start.tasks()
    cmd = CompleteStep(event_id="c2", run_id=RUN, workflow_id="wf", occurred_at=T0,
                       step_id="a", attempt=1)
    with command_span(cmd, None):  # orchestrator: StartRun's decision
        task_headers(task)
        record_decision(None, start.state, start.events)
    headers = task_headers(task)
    with task_span(task, headers):  # executor
        with component_span("noop@1"):
            pass
        note_step_outcome(True, None, None)
        reported = kafka_headers()
    with command_span(cmd, reported):  # orchestrator: CompleteStep's decision
        record_decision(start.state, done.state, done.events)


def _no_hooks(start: Accepted, done: Accepted) -> None:
    """The same step without the hooks: what `_one_step` costs besides them."""
    [_task] = start.tasks()
    CompleteStep(event_id="c2", run_id=RUN, workflow_id="wf", occurred_at=T0, step_id="a",
                 attempt=1)


def measure(n: int, step: Any = _one_step) -> float:
    """Microseconds per step, best of five rounds of `n` steps, less the same without hooks."""
    start, done = _decisions()
    rounds: dict[Any, float] = {}
    for fn in (step, _no_hooks):
        best = float("inf")
        for _ in range(5):
            began = time.perf_counter()
            for _ in range(n):
                fn(start, done)
            best = min(best, (time.perf_counter() - began) / n)
        rounds[fn] = best
    return max(0.0, rounds[step] - rounds[_no_hooks]) * 1e6


def main() -> None:
    """Print µs per step with tracing off, on with every run sampled, and on at ratio 0."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    results: dict[str, float] = {"off": measure(args.steps)}
    for label, ratio in (("on_sampled", 1.0), ("on_ratio_0", 0.0)):
        settings = Settings().model_copy(update={"tracing": TracingSettings(sample_ratio=ratio)})
        configure_tracing(settings, "bench", exporter=_Discard())
        try:
            results[label] = measure(max(1, args.steps // 10))
        finally:
            shutdown_tracing()
    print(json.dumps({f"{k}_us_per_step": round(v, 2) for k, v in results.items()}))


if __name__ == "__main__":
    main()
