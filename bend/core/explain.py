"""Why a run is not moving: its folded state plus facts the edge observed, turned into reasons.

Pure: the edge (bend.explain) reads the run log, the consumer groups, the circuits and
dead-letter topics and the executors' in-flight steps, and hands them over as `LiveFacts`;
`explain` only reasons. Each `Reason` says what the run waits on, for a person, and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bend.core.kinds import Begin, Wait, kind_of
from bend.core.nodes import StepBase
from bend.core.events import Event, RunCancelled, RunCompleted
from bend.core.state import RunState, RunStatus, StepState, StepStatus, Timer

__all__ = [
    "CircuitFacts", "DeadLetterFacts", "ExecutorLoad", "KINDS", "LiveFacts", "PartitionFacts",
    "Reason", "explain", "http_target",
]

KINDS = (
    "run_finished", "not_started", "timer", "child_run", "waiting_for_executor",
    "step_running", "orchestrator_lag", "circuit_open", "concurrency_limit", "no_consumer",
    "dead_lettered", "approval", "signal", "unknown",
)


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing the run waits on (or how it ended): `message` is for a person."""

    kind: str
    message: str
    until: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartitionFacts:
    """A consumer group's hold on one partition: who is assigned it and how far behind it is."""

    role: str  # orchestrator | executor
    group: str
    topic: str
    partition: int
    members: tuple[str, ...] = ()  # consumer member ids assigned the partition
    lag: int | None = None  # end offset minus the group's committed offset (None: unknown)
    group_state: str = ""


@dataclass(frozen=True, slots=True)
class CircuitFacts:
    """The latest recorded state of a target's circuit breaker."""

    target: str
    state: str  # closed | open | half_open
    changed_at: datetime
    open_until: datetime | None = None
    worker_id: str = ""
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetterFacts:
    """A record keyed by the run that no processor could handle."""

    event_id: str
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    reason: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class ExecutorLoad:
    """Attempts in flight on one executor process, against its concurrency limit."""

    worker_id: str
    in_flight: int
    limit: int


@dataclass(frozen=True, slots=True)
class LiveFacts:
    """What the edge observed about the run's surroundings at `now`."""

    now: datetime
    orchestrator: PartitionFacts | None = None  # the commands partition of the run's key
    executor: PartitionFacts | None = None  # the tasks partition of the run's key
    loads: tuple[ExecutorLoad, ...] = ()  # executors taking the run's tasks partition
    circuits: Mapping[str, CircuitFacts] = field(default_factory=dict)
    dead_letters: tuple[DeadLetterFacts, ...] = ()
    children: Mapping[str, str] = field(default_factory=dict)  # child run id -> its status


def http_target(step: StepState) -> str | None:
    """The breaker target (scheme://host:port) an http step's input calls, if any."""
    url = step.input.get("url") if isinstance(step.input, dict) else None
    if step.node_type != "http" or not isinstance(url, str) or "://" not in url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def explain(state: RunState | None, facts: LiveFacts,
            events: Sequence[Event] = ()) -> list[Reason]:
    """The reasons the run (None: not decided yet) is where it is, most pressing first."""
    reasons: list[Reason] = []
    if state is not None and state.is_finished:
        reasons.append(_finished(state, events))
    else:
        reasons.extend(_orchestrator(facts))
        if state is None:
            reasons.append(Reason(
                "not_started", "The run's StartRun has not been decided yet: the orchestrator "
                "has not reached it. Check the orchestrator workers (`bend dev status`).",
                details=_where(facts.orchestrator)))
        else:
            for step in _open_or_waiting(state):
                reasons.extend(_step(state, step, facts))
            reasons.extend(_timer(state, t, facts) for t in state.timers.values()
                           if t.purpose == "run_timeout")
    reasons.extend(_dead_letter(d) for d in facts.dead_letters)
    if not reasons:
        reasons.append(Reason(
            "unknown", "Nothing the run waits on could be found: no step is open and no timer "
            "is pending. Compare the log with the read model: `bend replay run RUN`.",
            details={"status": state.status.value if state else None}))
    return reasons


def _where(p: PartitionFacts | None) -> dict[str, Any]:
    if p is None:
        return {}
    return {"topic": p.topic, "partition": p.partition, "group": p.group}


def _finished(state: RunState, events: Sequence[Event]) -> Reason:
    last = next((e for e in reversed(events) if isinstance(e, (RunCompleted, RunCancelled))),
                None)
    details: dict[str, Any] = {"status": state.status.value}
    if state.status is RunStatus.COMPLETED:
        took = ""
        if isinstance(last, RunCompleted) and last.duration_ms:
            took = f" in {last.duration_ms / 1000:.3g} s"
            details["duration_ms"] = last.duration_ms
        message = f"The run completed{took}; nothing more will happen to it."
    elif state.status is RunStatus.CANCELLED:
        by = last.requested_by if isinstance(last, RunCancelled) and last.requested_by else ""
        why = state.error.message if state.error else "cancelled"
        details.update(reason=why, requested_by=by or None)
        message = (f"The run was cancelled{f' by {by}' if by else ''} ({why}); start a new "
                   "run to try again.")
    else:
        err = state.error
        at = f" at step {err.step_id}" if err and err.step_id else ""
        what = f"{err.error_type}: {err.message}" if err else "an unknown error"
        details.update(error_type=err.error_type if err else None,
                       error_message=err.message if err else None,
                       step_id=err.step_id if err else None)
        message = (f"The run failed{at} with {what}. Fix the cause, then start it again or "
                   "fork it from that step (`bend replay fork`).")
    return Reason("run_finished", message, state.finished_at, details)


def _orchestrator(facts: LiveFacts) -> list[Reason]:
    p = facts.orchestrator
    if p is None:
        return []
    out = []
    if not p.members:
        out.append(Reason(
            "no_consumer", f"No orchestrator consumes partition {p.partition} of {p.topic}: "
            "nothing sent to this run is decided. Start an orchestrator (`bend worker "
            "orchestrator`) or check why the running ones left the group.",
            details={**_where(p), "role": p.role, "group_state": p.group_state}))
    if p.lag:
        out.append(Reason(
            "orchestrator_lag", f"The orchestrator is behind by {p.lag} command(s) on partition "
            f"{p.partition} of {p.topic}; this run's next decision waits behind them. If it "
            "keeps growing, add orchestrator processes (up to one per partition).",
            details={**_where(p), "lag": p.lag, "members": list(p.members)}))
    return out


def _open_or_waiting(state: RunState) -> list[StepState]:
    return [s for s in state.steps.values()
            if s.step_id in state.open_ids or s.status is StepStatus.RETRY_WAIT]


def _step(state: RunState, step: StepState, facts: LiveFacts) -> list[Reason]:
    timers = [t for t in state.timers.values() if t.step_id == step.step_id]
    out = [_timer(state, t, facts) for t in timers if t.purpose in ("delay", "retry")]
    kind = kind_of(step.node_type)
    waits_on = kind.waits_on if kind is not None else None
    if waits_on is Wait.CHILD_RUN and step.status.attempt_open:
        out.append(_child(step, facts))
    elif waits_on is Wait.WORKER and step.status.attempt_open:
        out.extend(_executor(step, facts))
    elif kind is not None and kind.begins is Begin.AWAIT and step.status.attempt_open:
        out.append(_awaiting(state.run_id, step, kind.model))
    target = http_target(step)
    circuit = facts.circuits.get(target) if target else None
    if (circuit is not None and circuit.state == "open" and circuit.open_until is not None
            and circuit.open_until > facts.now):
        out.append(Reason(
            "circuit_open", f"The circuit breaker for {target} is open until "
            f"{_at(circuit.open_until)} after {circuit.consecutive_failures} failures in a row: "
            f"step {step.step_id}'s calls are refused (and retried) until then. Check that "
            f"{target} is up.", circuit.open_until,
            {"target": target, "step_id": step.step_id, "worker_id": circuit.worker_id,
             "consecutive_failures": circuit.consecutive_failures}))
    out.extend(_timer(state, t, facts) for t in timers if t.purpose == "step_timeout")
    return out


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _timer(state: RunState, t: Timer, facts: LiveFacts) -> Reason:
    details: dict[str, Any] = {"purpose": t.purpose, "timer_id": t.timer_id, "step_id": t.step_id}
    overdue = t.fire_at <= facts.now
    late = (" It is overdue: the orchestrator owning the run's partition fires it; check it "
            "is running.") if overdue else ""
    step = state.step(t.step_id) if t.step_id else None
    if t.purpose == "delay":
        message = f"Step {t.step_id} is a delay: the run waits until {_at(t.fire_at)}."
    elif t.purpose == "retry" and step is not None:
        err = f" ({step.error.error_type}: {step.error.message})" if step.error else ""
        message = (f"Step {t.step_id} failed attempt {step.attempt}{err} and is retried as "
                   f"attempt {step.attempt + 1} at {_at(t.fire_at)} (retry back-off). If it "
                   "keeps failing, fix the cause; the retry policy gives up after max_attempts.")
        details["attempt"] = step.attempt
    elif t.purpose == "step_timeout":
        message = (f"Step {t.step_id} times out at {_at(t.fire_at)} unless attempt "
                   f"{step.attempt if step else '?'} finishes first.")
    else:
        message = f"The run times out at {_at(t.fire_at)} unless it finishes first."
    return Reason("timer", message + late, t.fire_at, {**details, "overdue": overdue})


def _awaiting(run_id: str, step: StepState, model: type[StepBase]) -> Reason:
    awaited = model.awaited(step.input if isinstance(step.input, dict) else {}, run_id)
    return Reason(awaited.code, f"Step {step.step_id} waits for {awaited.guide}.",
                  details={"step_id": step.step_id, **awaited.details})


def _child(step: StepState, facts: LiveFacts) -> Reason:
    child = step.input.get("child_run_id") if isinstance(step.input, dict) else None
    status = facts.children.get(child, "unknown") if child else "unknown"
    return Reason(
        "child_run", f"Step {step.step_id} waits on child run {child} ({status}); see why it "
        f"is not done with `bend runs explain {child}`.",
        details={"step_id": step.step_id, "child_run_id": child, "child_status": status})


def _executor(step: StepState, facts: LiveFacts) -> list[Reason]:
    ids = {"step_id": step.step_id, "attempt": step.attempt, "node_type": step.node_type}
    if step.status is StepStatus.RUNNING:
        on = f" on {step.worker_id}" if step.worker_id else ""
        since = f" since {_at(step.started_at)}" if step.started_at else ""
        return [Reason("step_running", f"Step {step.step_id} (attempt {step.attempt}) is "
                       f"running{on}{since}; the run waits for it to finish.",
                       details={**ids, "worker_id": step.worker_id or None})]
    p = facts.executor
    out: list[Reason] = []
    if p is not None and not p.members:
        out.append(Reason(
            "no_consumer", f"No executor consumes partition {p.partition} of {p.topic}, where "
            f"step {step.step_id}'s task waits. Start an executor (`bend worker executor`).",
            details={**_where(p), **ids, "role": p.role, "group_state": p.group_state}))
    full = [load for load in facts.loads if load.in_flight >= load.limit]
    if full:
        names = ", ".join(f"{f.worker_id} ({f.in_flight}/{f.limit})" for f in full)
        out.append(Reason(
            "concurrency_limit", f"Step {step.step_id} waits for a free slot: the executor "
            f"taking its partition runs as many steps as it may ({names}, "
            "worker.executor_concurrency). Add executor processes or raise the limit.",
            details={**ids, "executors": [{"worker_id": f.worker_id, "in_flight": f.in_flight,
                                           "limit": f.limit} for f in full]}))
    queued = f"{p.lag} task(s) are unread on partition {p.partition} of {p.topic}" \
        if p is not None and p.lag else "its task is with an executor but not reported started"
    out.append(Reason(
        "waiting_for_executor", f"Step {step.step_id} (attempt {step.attempt}) is dispatched "
        f"and not started: {queued}.", details={**ids, **_where(p),
                                                "lag": p.lag if p is not None else None}))
    return out


def _dead_letter(d: DeadLetterFacts) -> Reason:
    return Reason(
        "dead_lettered", f"A record of this run on {d.source_topic} (partition "
        f"{d.source_partition}, offset {d.source_offset}) was dead-lettered at "
        f"{_at(d.occurred_at)}: {d.error_type}: {d.reason}. What it asked for did not happen; "
        "fix the cause and re-drive it, or cancel the run.",
        details={"event_id": d.event_id, "source_topic": d.source_topic,
                 "source_partition": d.source_partition, "source_offset": d.source_offset,
                 "error_type": d.error_type})
