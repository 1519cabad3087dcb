"""How a decision ends attempts, steps and runs: retry or fail, cancel, tell the parent run."""

from __future__ import annotations

from typing import Any

from bend.core import ids
from bend.core.commands import CancelRun, CompleteStep, FailStep
from bend.core.kinds import RETRIED_NODE_TYPES, Runner, kind_of
from bend.core.draft import Draft
from bend.core.events import (
    RunFailed, StepCancelled, StepFailed, StepRetryScheduled, StepScheduled, StepTimedOut,
    TimerSet,
)
from bend.core.retry import backoff_delay, may_retry
from bend.core.state import RunStatus, StepState

__all__ = [
    "cancel_all_open", "cancel_instance", "engine_step_failed", "fail_attempt", "fail_run",
    "notify_parent", "scheduled",
]

_NOT_RETRIED_CHILD_ERRORS = frozenset({"InvalidDefinition", "InvalidInput", "RunCancelled"})


def fail_attempt(d: Draft, inst: str, error_type: str, message: str, retryable: bool, *,
                 timed_out_ms: int | None = None) -> None:
    """End the open attempt of `inst` in failure; retry if its policy allows, else fail the run."""
    st = d.run.step(inst)
    node = d.plan.nodes[ids.split_instance(inst)[0]]
    defn = d.run.definition
    assert defn is not None
    policy = defn.retry_policy(node)
    again = node.type in RETRIED_NODE_TYPES and may_retry(policy, error_type, retryable, st.attempt)
    if timed_out_ms is not None:
        _cancel_child(d, st, f"attempt {st.attempt} of the parent step timed out")
        d.emit(StepTimedOut, step_id=inst, attempt=st.attempt, timeout_ms=timed_out_ms)
    else:
        d.emit(StepFailed, step_id=inst, attempt=st.attempt, error_type=error_type,
               message=message, retryable=again)
    if not again:
        fail_run(d, error_type, f"step {inst} failed: {message}", inst)
        return
    delay = backoff_delay(policy, d.run.run_id, inst, st.attempt)
    retry_at = d.now + delay
    d.emit(StepRetryScheduled, step_id=inst, next_attempt=st.attempt + 1, retry_at=retry_at,
           delay_ms=int(delay.total_seconds() * 1000))
    d.emit(TimerSet, timer_id=ids.timer_id(d.run.run_id, "retry", inst, st.attempt + 1),
           purpose="retry", fire_at=retry_at, step_id=inst)


def fail_run(d: Draft, error_type: str, message: str, step_id: str | None = None) -> None:
    """Cancel every open step, fail the run, and tell its parent."""
    cancel_all_open(d, "the run failed")
    d.emit(RunFailed, error_type=error_type, message=message, step_id=step_id)
    notify_parent(d)


def cancel_all_open(d: Draft, reason: str) -> None:
    """Cancel every open step instance (their child runs too)."""
    for st in d.run.open_steps():
        _cancel_child(d, st, reason)
        _cancel(d, st, reason)


def cancel_instance(d: Draft, inst: str, reason: str) -> None:
    """Cancel the open instance `inst` and every open instance inside it (if a container)."""
    plan = d.plan
    step_id, indices = ids.split_instance(inst)
    inner = []
    for other in d.run.open_steps():
        other_id, other_indices = ids.split_instance(other.step_id)
        owner = plan.owner.get(other_id)
        while owner is not None and owner != step_id:
            owner = plan.owner.get(owner)
        if owner == step_id and other_indices[:len(indices)] == indices \
                and other.step_id != inst:
            inner.append(other)
    for st in [*reversed(inner), d.run.step(inst)]:
        _cancel_child(d, st, reason)
        _cancel(d, st, reason)


def _cancel(d: Draft, st: StepState, reason: str) -> None:
    """Cancel `st`, naming the attempt it had out (its executor is told to stop it)."""
    d.emit(StepCancelled, step_id=st.step_id, reason=reason,
           attempt=st.attempt if st.status.attempt_open else 0)


def _cancel_child(d: Draft, st: StepState, reason: str) -> None:
    kind = kind_of(st.node_type)
    if kind is not None and kind.runner is Runner.CHILD_RUN and st.status.attempt_open \
            and isinstance(st.input, dict):
        d.send(CancelRun, run_id=st.input["child_run_id"], workflow_id=st.input["workflow_id"],
               reason=reason, requested_by=f"run {d.run.run_id}")


def notify_parent(d: Draft) -> None:
    """Report a finished child run to the parent step that started it (CompleteStep/FailStep)."""
    run = d.run
    if run.parent_run_id is None or run.parent_step_id is None:
        return
    attempt = ids.parent_attempt(run.idempotency_key)
    common: dict[str, Any] = {"step_id": run.parent_step_id, "attempt": attempt}
    if run.status is RunStatus.COMPLETED:
        duration = (run.finished_at - run.started_at) if run.finished_at and run.started_at \
            else None
        d.send(CompleteStep, run.parent_run_id, output=run.output,
               duration_ms=int(duration.total_seconds() * 1000) if duration else 0, **common)
    elif run.error is not None:
        d.send(FailStep, run.parent_run_id, error_type=run.error.error_type,
               message=f"child run {run.run_id} {run.status.value}: {run.error.message}",
               retryable=run.error.error_type not in _NOT_RETRIED_CHILD_ERRORS, **common)


def engine_step_failed(d: Draft, node: Any, inst: str, error_type: str, message: str) -> None:
    """A step the engine evaluates failed: no retry can change a pure function's answer."""
    if not d.run.step(inst).status.attempt_open:
        scheduled(d, node, inst, 1, None)
    fail_attempt(d, inst, error_type, message, retryable=False)


def scheduled(d: Draft, node: Any, inst: str, attempt: int, input: Any,
              timeout_ms: int | None = None) -> None:
    """Record attempt `attempt` of `inst` as scheduled, with its idempotency key."""
    d.emit(StepScheduled, step_id=inst, node_type=node.type, attempt=attempt, input=input,
           idempotency_key=ids.idempotency_key(d.run.run_id, inst, attempt),
           timeout_ms=timeout_ms)
