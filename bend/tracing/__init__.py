"""OpenTelemetry traces of Bend runs: one trace per run, W3C trace context on records and HTTP.

Design (why it holds across many records, processes and restarts):

- One trace per run. A run's trace id is derived from its run id (the UUID itself, else a
  hash; bend.tracing.ids), and so are the ids of the run's root span and of each step attempt's
  span (run_id, step_id, attempt). Any process rebuilds them from a record's ids without state:
  the orchestrator, which folds its state from the log, needs nothing more after a restart or a
  rebalance, and a task it re-dispatches on recovery carries the same parent as the first time.
  Nothing is added to events, commands or run state.
- The orchestrator records the `run <workflow>` span when the run ends and each `step <id>`
  span (one per attempt, from its dispatch to its end) when the attempt ends, with the times of
  the events that opened and closed them (record_decision). A span is never held open across
  records. Until the run ends its root span is absent and backends show its children under a
  missing parent; a run that never ends has no root span.
- Around each command the orchestrator makes `decide <Command>`. Its parent is the record's
  `traceparent` header when that is in the run's trace, else the run span, with a link to a
  foreign context (a parent run's step for a child run's StartRun, a traced API caller).
- Across Kafka: commands sent from outside (API, triggers, fork; bend.kafka.producer) carry the
  context of a zero-length `send <Command>` PRODUCER span in the run's trace; task records carry
  the step attempt's span; the executor's `execute <node type>` span is its child, its LLM
  (`chat <model>`), tool (`tool <ref>`) and HTTP (`<METHOD>`) call spans are children of that,
  outbound HTTP requests carry the call span's `traceparent`, and its CompleteStep/FailStep
  records carry the execute span's context back to the orchestrator's `decide` span.
- Off by default: without `BEND_TRACING__OTLP_ENDPOINT` no provider is installed, no span is
  made and no header is written (each helper returns after one check). A process with tracing
  off breaks no trace: every parent it would have passed on is also derivable from ids, so the
  next traced process still attaches its spans to the run's trace, only one link shorter.
- Sampling is per run: a hash of the trace id against `BEND_TRACING__SAMPLE_RATIO`, the same
  decision in every process, so a run left out gets no span and no header anywhere (its ids
  are derivable, so nothing would be gained by propagating an unsampled flag).
- Export: OTLP over HTTP/protobuf with a batch processor, flushed at the process's exit.
  A span made in a process killed before its batch went out is lost (the run's events are not).
- Cost (bench/tracing_overhead.py): off, the hooks add about 2 µs of CPU per step; on with
  every run sampled, about 0.6 ms per step across the orchestrator and the executor, which on
  a busy machine is visible in steps/s; a production setup samples.
- Not traced: the projector (its batches span many runs) and the API's own requests (no
  server instrumentation; its commands' `send` spans are in their runs' traces).
"""

from bend.tracing.calls import (
    call_span, component_span, http_attributes, note_http_status, note_llm_usage,
    note_step_outcome, task_span,
)
from bend.tracing.propagation import extract_kafka, inject_http, inject_kafka
from bend.tracing.provider import configure_tracing, current, shutdown_tracing
from bend.tracing.runs import (
    command_span, kafka_headers, record_decision, record_headers, task_headers,
)

__all__ = [
    "call_span", "command_span", "component_span", "configure_tracing", "current", "extract_kafka",
    "http_attributes", "inject_http", "inject_kafka", "kafka_headers", "note_http_status",
    "note_llm_usage", "note_step_outcome", "record_decision", "record_headers", "shutdown_tracing",
    "task_headers",
    "task_span",
]
