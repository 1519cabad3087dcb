"""Steps that wait on the outside world: approvals (a person's decision) and waits (a signal).

Both begin scheduled with their timeout timer (the kind's `Begin.AWAIT`) and end by a command
from outside: DecideApproval or SignalRun. A signal that comes before any step waits for it is
kept in the run's state; a wait step that begins takes the earliest kept signal of its name.
"""

from __future__ import annotations

from typing import Any

from bend.core import ids
from bend.core.draft import Draft
from bend.core.events import ApprovalDecided, SignalDelivered, StepSucceeded, TimerSet
from bend.core.kinds import NODE_KINDS, Wait
from bend.core.nodes import schema_problem
from bend.core.outcomes import fail_attempt, scheduled
from bend.core.state import KeptSignal, RunState, StepState

__all__ = [
    "APPROVAL_REJECTED", "begin_await", "decide_approval", "deliver", "signal_problem",
    "waiting_for",
    "waits_on",
]

APPROVAL_REJECTED = "ApprovalRejected"


def begin_await(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    """Schedule the approval or wait step with its timeout timer; a wait takes a kept signal."""
    defn = d.run.definition
    assert defn is not None
    timeout = defn.step_timeout(node)
    spec = node.task_input(ctx, None)
    if timeout is not None:
        spec = {**spec, "timeout_at": (d.now + timeout).isoformat()}
    scheduled(d, node, inst, 1, spec, int(timeout.total_seconds() * 1000) if timeout else None)
    kept = d.run.kept_signal(node.signal) if node.type == "wait" else None
    if kept is not None:
        deliver(d, inst, kept)
    elif timeout is not None:
        d.emit(TimerSet, timer_id=ids.timer_id(d.run.run_id, "step_timeout", inst, 1),
               purpose="step_timeout", fire_at=d.now + timeout, step_id=inst)


def deliver(d: Draft, inst: str, kept: KeptSignal) -> None:
    """Hand the kept signal to the waiting step `inst`, which succeeds with its payload."""
    st = d.run.step(inst)
    d.emit(SignalDelivered, step_id=inst, attempt=st.attempt, name=kept.name,
           signal_id=kept.signal_id)
    d.emit(StepSucceeded, step_id=inst, attempt=st.attempt, output=kept.payload)


def decide_approval(d: Draft, inst: str, approved: bool, *, decided_by: str = "",
                    comment: str = "", answer: Any = None, timed_out: bool = False) -> None:
    """Record the decision; approved, the step succeeds with `answer`, rejected, it fails."""
    st = d.run.step(inst)
    d.emit(ApprovalDecided, step_id=inst, attempt=st.attempt, approved=approved,
           decided_by=decided_by, comment=comment, answer=answer, timed_out=timed_out)
    if approved:
        d.emit(StepSucceeded, step_id=inst, attempt=st.attempt,
               output=answer if answer is not None else {})
    else:
        why = "its timeout took the default, reject" if timed_out else \
            f"rejected by {decided_by or 'an approver'}" + (f": {comment}" if comment else "")
        fail_attempt(d, inst, APPROVAL_REJECTED, why, retryable=False)


def waits_on(st: StepState) -> Wait | None:
    """What the step instance waits on, by its kind."""
    kind = NODE_KINDS.get(st.node_type)
    return kind.waits_on if kind is not None else None


def waiting_for(state: RunState, name: str) -> StepState | None:
    """The earliest begun wait step still waiting for the signal `name`."""
    return next((st for st in state.open_steps()
                 if waits_on(st) is Wait.SIGNAL and st.status.attempt_open
                 and isinstance(st.input, dict) and st.input.get("signal") == name), None)


def signal_problem(state: RunState, name: str, payload: Any) -> str | None:
    """Why the run refuses the signal `name` with `payload` now, or None if it takes it.

    A step waiting for it checks the payload against its schema; with none waiting, the signal
    is kept only if the workflow has a wait step for it, and must fit every such step's schema.
    """
    waiting = waiting_for(state, name)
    if waiting is not None:
        schemas = [waiting.input.get("payload_schema")]
    else:
        assert state.plan is not None
        nodes = [n for n in state.plan.nodes.values()
                 if n.type == "wait" and n.signal == name]
        if not nodes:
            return (f"no wait step of workflow {state.workflow_id} waits for a signal named "
                    f"{name!r}")
        schemas = [n.payload_schema for n in nodes]
    for schema in schemas:
        problem = schema_problem(schema, payload)
        if problem is not None:
            return f"the payload does not match signal {name!r}'s payload_schema: {problem}"
    return None
