"""Bend's Prometheus metrics: every family in one place, and the helpers that feed them.

Each run and step is counted once however many processes there are: the orchestrator counts
the outcomes it decides (runs, steps, retries, timeouts), executors the calls they make (LLM
calls, tokens, cost), and each process its own consumer lag, dead letters and breakers.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import cast

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bend import __version__
from bend.core.circuit import CircuitState
from bend.core.commands import Command, RecordLlmCall
from bend.core.events import (
    Event, RunStarted, StepCancelled, StepFailed, StepRetryScheduled, StepScheduled, StepStarted,
    StepSucceeded, StepTimedOut,
)
from bend.core.state import RunState
from bend.core.timing import attempt_timing
from bend.core.transitions import RUN_ENDINGS, STEP_ENDINGS
from bend.settings import LlmPrice

_Ended = StepSucceeded | StepFailed | StepTimedOut  # STEP_ENDINGS but StepCancelled

__all__ = [
    "ARCHIVE_LAG", "CIRCUIT_STATE_VALUES", "COMMANDS", "CONSUMER_ASSIGNED", "CONSUMER_LAG",
    "DEAD_LETTERS",
    "EXECUTOR_STEPS", "HTTP_REQUESTS", "HTTP_REQUEST_DURATION", "INFO", "LLM_CALLS",
    "LLM_CALL_DURATION", "LLM_COST", "LLM_TOKENS", "PROJECTION_LAG", "PROJECTION_LAG_SECONDS",
    "RUNS_FINISHED",
    "RUNS_STARTED", "STALLED_PARTITIONS", "STEP_DURATION", "STEP_OVERHEAD", "STEP_RETRIES",
    "STEP_TIMEOUTS",
    "llm_cost", "observe_decision", "observe_llm_calls", "price_of", "set_consumer_lag",
    "set_archive_lag", "set_projection_lag", "watch_archiver", "watch_circuits",
]

# prometheus_client leaves disable_created_metrics unannotated.
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin of every counter

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                     120.0, 300.0, 600.0, 1800.0, 3600.0)
_OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INFO = Gauge("bend_info", "This process: its role and Bend's version (always 1).",
             ["role", "version"])

# The orchestrator: what it decides.
RUNS_STARTED = Counter("bend_runs_started", "Runs started, by workflow name.", ["workflow"])
RUNS_FINISHED = Counter("bend_runs_finished", "Runs finished, by workflow name and outcome "
                        "(completed, failed, cancelled).", ["workflow", "outcome"])
STEP_DURATION = Histogram(
    "bend_step_duration_seconds", "Step attempts, from start (or scheduling, for steps the "
    "engine runs) to end, by node type and outcome (succeeded, failed, timed_out).",
    ["node_type", "outcome"], buckets=_DURATION_BUCKETS)
STEP_OVERHEAD = Histogram(
    "bend_step_overhead_seconds", "Engine overhead of executor steps: from the decision that "
    "scheduled the attempt (its predecessor's end) to the executor starting it, by node type.",
    ["node_type"], buckets=_OVERHEAD_BUCKETS)
STEP_RETRIES = Counter("bend_step_retries", "Retries scheduled, by node type.", ["node_type"])
STEP_TIMEOUTS = Counter("bend_step_timeouts", "Step attempts timed out, by node type.",
                        ["node_type"])
COMMANDS = Counter("bend_commands", "Commands the orchestrator took, by type and result "
                   "(accepted, rejected, dead_lettered, redelivered: decided before a crash, its "
                   "outbox sent again).", ["command", "result"])

# Executors: what they run and call.
EXECUTOR_STEPS = Counter("bend_executor_steps", "Step attempts this executor ran, by node type "
                         "and outcome (succeeded, failed, cancelled: stopped or never begun, "
                         "withheld: not reported, fenced out).", ["node_type", "outcome"])
LLM_CALLS = Counter("bend_llm_calls", "LLM calls made, by model.", ["model"])
LLM_TOKENS = Counter("bend_llm_tokens", "LLM tokens used, by model and kind (prompt, "
                     "completion).", ["model", "kind"])
LLM_COST = Counter("bend_llm_cost_usd", "LLM cost in US dollars, by model (from the "
                   "settings' price table; 0 for an unknown model).", ["model"])
LLM_CALL_DURATION = Histogram("bend_llm_call_duration_seconds", "LLM call latency, by model.",
                              ["model"], buckets=_DURATION_BUCKETS)
CIRCUIT_TRANSITIONS = Counter("bend_circuit_transitions", "Circuit-breaker changes, by target "
                              "and new state.", ["target", "to_state"])

# Every process.
DEAD_LETTERS = Counter("bend_dead_letters", "Records sent to the dead-letter topic, by source "
                       "topic and error type.", ["source_topic", "error_type"])
CONSUMER_LAG = Gauge("bend_consumer_lag", "Records behind the end of each partition assigned "
                     "to this process (highwater - position), by consumer group.",
                     ["group", "topic", "partition"])
CONSUMER_ASSIGNED = Gauge("bend_consumer_assigned_partitions", "Partitions assigned to this "
                          "process, by consumer group.", ["group"])
STALLED_PARTITIONS = Counter("bend_stalled_partitions", "Partitions this worker held without "
                             "reading while records waited there, found and moved back to "
                             "their committed offset (see streams/stall.py).",
                             ["group", "topic"])
PROJECTION_LAG = Gauge("bend_projection_lag", "Records in the log not yet applied to the read "
                       "models, for each partition this projector owns.", ["topic", "partition"])
PROJECTION_LAG_SECONDS = Gauge("bend_projection_lag_seconds", "How long records have waited to "
                               "be applied to the read models (0: none waits), for each partition "
                               "this projector owns.", ["topic", "partition"])
# The archiver.
ARCHIVE_LAG = Gauge("bend_archive_lag", "Records in the log not yet written to archive "
                    "segments, for each partition this archiver owns.", ["topic", "partition"])

# The API.
HTTP_REQUESTS = Counter("bend_http_requests", "API requests, by method, route and status.",
                        ["method", "route", "status"])
HTTP_REQUEST_DURATION = Histogram("bend_http_request_duration_seconds", "API request latency, "
                                  "by method and route.", ["method", "route"],
                                  buckets=_DURATION_BUCKETS)

CIRCUIT_STATE_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


def set_role(role: str) -> None:
    """Mark this process's role in `bend_info`."""
    INFO.labels(role, __version__).set(1)


def _seconds(end: datetime, begin: datetime | None) -> float | None:
    return None if begin is None else max((end - begin).total_seconds(), 0.0)


def observe_decision(before: RunState | None, after: RunState,
                     events: Sequence[Event]) -> None:
    """Count what one accepted decision did: runs started and finished, step attempts'
    durations and overhead, retries and timeouts (events in the order they were decided)."""
    workflow = after.definition.name if after.definition is not None else after.workflow_id
    scheduled: dict[str, datetime] = {}
    started: dict[str, datetime] = {}
    types: dict[str, str] = {}

    def prior(step_id: str) -> tuple[str, datetime | None, datetime | None]:
        st = before.steps.get(step_id) if before is not None else None
        node_type = types.get(step_id) or (st.node_type if st else "") or \
            after.step(step_id).node_type or "unknown"
        return (node_type, scheduled.get(step_id) or (st.scheduled_at if st else None),
                started.get(step_id) or (st.started_at if st else None))

    for ev in events:
        if isinstance(ev, StepScheduled):
            types[ev.step_id] = ev.node_type
            scheduled[ev.step_id] = ev.occurred_at
            started.pop(ev.step_id, None)
        elif isinstance(ev, StepStarted):
            node_type, at, _ = prior(ev.step_id)
            overhead = _seconds(ev.occurred_at, at)
            if overhead is not None:
                STEP_OVERHEAD.labels(node_type).observe(overhead)
            started[ev.step_id] = ev.occurred_at
        elif ev.event_type in STEP_ENDINGS and not isinstance(ev, StepCancelled):
            ev = cast("_Ended", ev)  # the step endings but a cancel
            node_type, at, began = prior(ev.step_id)
            # How long it ran, as the API and the UI say (bend.core.timing).
            run_ms = attempt_timing(at, began, ev.occurred_at,
                                    getattr(ev, "duration_ms", None)).run_ms
            if run_ms is not None:
                STEP_DURATION.labels(node_type, STEP_ENDINGS[ev.event_type].value).observe(
                    run_ms / 1000)
            if isinstance(ev, StepTimedOut):
                STEP_TIMEOUTS.labels(node_type).inc()
        elif isinstance(ev, StepRetryScheduled):
            STEP_RETRIES.labels(prior(ev.step_id)[0]).inc()
        elif isinstance(ev, RunStarted):
            RUNS_STARTED.labels(workflow).inc()
        elif ev.event_type in RUN_ENDINGS:
            RUNS_FINISHED.labels(workflow, RUN_ENDINGS[ev.event_type].value).inc()


def price_of(model: str, prices: Mapping[str, LlmPrice]) -> LlmPrice | None:
    """The price of `model`: its own entry, else the longest entry it starts with, else None."""
    found = prices.get(model)
    if found is not None:
        return found
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


def llm_cost(model: str, prompt_tokens: int, completion_tokens: int,
             prices: Mapping[str, LlmPrice]) -> float:
    """What a call cost in US dollars (0 for a model with no price)."""
    price = price_of(model, prices)
    if price is None:
        return 0.0
    return (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) / 1e6


def observe_llm_calls(records: Iterable[Command], prices: Mapping[str, LlmPrice]) -> None:
    """Count the LLM calls an executor made (its `RecordLlmCall` commands): calls, tokens, cost."""
    for rec in records:
        if not isinstance(rec, RecordLlmCall):
            continue
        model = rec.model or "unknown"
        LLM_CALLS.labels(model).inc()
        LLM_TOKENS.labels(model, "prompt").inc(rec.prompt_tokens)
        LLM_TOKENS.labels(model, "completion").inc(rec.completion_tokens)
        LLM_COST.labels(model).inc(llm_cost(model, rec.prompt_tokens, rec.completion_tokens,
                                            prices))
        LLM_CALL_DURATION.labels(model).observe(rec.latency_ms / 1000)


_lag_series: dict[str, set[tuple[str, str]]] = {}


def set_consumer_lag(group: str, lags: Mapping[tuple[str, int], int]) -> None:
    """Publish `group`'s lag for each assigned (topic, partition); drop partitions it lost."""
    now = {(topic, str(partition)) for topic, partition in lags}
    for topic, label in _lag_series.get(group, set()) - now:
        CONSUMER_LAG.remove(group, topic, label)
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(group, topic, str(partition)).set(lag)
    CONSUMER_ASSIGNED.labels(group).set(len(lags))
    _lag_series[group] = now


def consumer_lag(highwater: int | None, position: int | None) -> int | None:
    """Records between a consumer's position and the partition's end (None if either is
    unknown yet)."""
    if highwater is None or position is None:
        return None
    return max(highwater - position, 0)


_projection_series: set[tuple[str, str]] = set()


def set_projection_lag(lags: Mapping[tuple[str, int], int],
                       seconds: Mapping[tuple[str, int], float] | None = None) -> None:
    """Publish the projector's lag (records, and seconds where known) for each partition it
    owns; drop partitions it lost."""
    global _projection_series
    now = {(topic, str(partition)) for topic, partition in lags}
    for topic, label in _projection_series - now:
        PROJECTION_LAG.remove(topic, label)
        with contextlib.suppress(KeyError):
            PROJECTION_LAG_SECONDS.remove(topic, label)
    for (topic, partition), lag in lags.items():
        PROJECTION_LAG.labels(topic, str(partition)).set(lag)
        wait = (seconds or {}).get((topic, partition))
        if wait is not None:
            PROJECTION_LAG_SECONDS.labels(topic, str(partition)).set(wait)
    _projection_series = now


States = Callable[[], Iterable[tuple[str, CircuitState]]]  # (target, state) of each breaker


class _Circuits(Collector):
    """`bend_circuit_state{target}` read from the watched breakers at scrape time."""

    def __init__(self) -> None:
        self.sources: list[Callable[[], States | None]] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("bend_circuit_state", "Circuit-breaker state per target "
                                   "(0 closed, 1 half_open, 2 open).", labels=["target"])
        states: dict[str, CircuitState] = {}
        for source in list(self.sources):
            read = source()
            if read is not None:
                states.update(read())
        for target, state in sorted(states.items()):
            family.add_metric([target], CIRCUIT_STATE_VALUES[state])
        yield family


_CIRCUITS = _Circuits()
REGISTRY.register(_CIRCUITS)


def watch_circuits(states: States) -> None:
    """Report the (target, state) pairs `states()` returns as `bend_circuit_state`; a bound
    method is held weakly, so a discarded executor stops being reported."""
    if inspect.ismethod(states):
        _CIRCUITS.sources.append(weakref.WeakMethod(states))
    else:
        _CIRCUITS.sources.append(lambda: states)


_archive_series: set[tuple[str, str]] = set()


def set_archive_lag(lags: Mapping[tuple[str, int], int]) -> None:
    """Publish the archiver's lag (records not in a segment yet) for each partition it owns;
    drop partitions it lost."""
    global _archive_series
    now = {(topic, str(partition)) for topic, partition in lags}
    for topic, label in _archive_series - now:
        ARCHIVE_LAG.remove(topic, label)
    for (topic, partition), lag in lags.items():
        ARCHIVE_LAG.labels(topic, str(partition)).set(lag)
    _archive_series = now


class _Archivers(Collector):
    """`bend_archive_gaps` and `bend_archived_records`, read from the watched archiver at
    scrape time (its own counts: the archiver knows nothing of metrics)."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[int, int]] | None = None

    def collect(self) -> Iterable[CounterMetricFamily]:
        if self.source is None:
            return
        gaps, archived = self.source()
        yield CounterMetricFamily("bend_archive_gaps", "Gaps the archiver found: offsets the "
                                  "log deleted before they were archived (see `bend archive "
                                  "status`).", value=gaps)
        yield CounterMetricFamily("bend_archived_records", "Records this archiver wrote to "
                                  "segment files.", value=archived)


_ARCHIVERS = _Archivers()
REGISTRY.register(_ARCHIVERS)


def watch_archiver(counts: Callable[[], tuple[int, int]] | None) -> None:
    """Report `counts()` = (gaps found, records archived) of this process's archiver as
    `bend_archive_gaps` and `bend_archived_records` (None: stop reporting them)."""
    _ARCHIVERS.source = counts
