"""Gated agent tools: an agent step's attempt pauses on a tool call until a person decides.

The executor reports the model's call of a gated tool (AwaitToolApproval, with a checkpoint of
its loop) instead of running it; the run records ToolApprovalRequested and the attempt stays
out, with no executor holding it. A DecideApproval naming the call's `tool_call_id` records
ApprovalDecided and StepResumed: the attempt is handed out again with its input's `resume`
(the checkpoint and the decision). The executor runs an approved call and hands a rejected
one's reason to the model as the tool's result. Replaying the log reproduces every decision;
the step's own timeout, if it has one, counts the time it waits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bend.core import ids
from bend.core.commands import AwaitToolApproval, DecideApproval
from bend.core.draft import Decision, Draft, Rejected
from bend.core.events import ApprovalDecided, StepResumed, ToolApprovalRequested
from bend.core.state import RunState, StepState

__all__ = ["await_tool_approval", "decide_tool_call", "rejection_text"]


def _paused_attempt(state: RunState, step_id: str, attempt: int | None) -> StepState | Rejected:
    st: StepState | None = state.steps.get(step_id)
    if st is None or st.node_type != "agent":
        return Rejected(f"step {step_id} is not an agent step of run {state.run_id}", "invalid")
    if not st.status.attempt_open or (attempt is not None and st.attempt != attempt):
        return Rejected(f"attempt {attempt or st.attempt} of step {step_id} is not open (the "
                        f"step is {st.status.value} at attempt {st.attempt})", "stale")
    return st


def await_tool_approval(state: RunState, cmd: AwaitToolApproval, now: datetime) -> Decision:
    """Pause the agent attempt on the gated call `cmd.tool_call_id`."""
    st = _paused_attempt(state, cmd.step_id, cmd.attempt)
    if isinstance(st, Rejected):
        return st
    if st.awaiting is not None:
        return Rejected(f"step {cmd.step_id} already waits on tool call "
                        f"{st.awaiting.tool_call_id}", "duplicate")
    gated = st.input.get("gated") if isinstance(st.input, dict) else None
    approvers = (gated or {}).get(cmd.tool_name)
    if approvers is None:
        return Rejected(f"tool {cmd.tool_name} of step {cmd.step_id} needs no approval", "invalid")
    d = Draft(cmd, now, state)
    d.emit(ToolApprovalRequested, step_id=cmd.step_id, attempt=cmd.attempt,
           tool_call_id=cmd.tool_call_id, tool_name=cmd.tool_name, arguments=cmd.arguments,
           approvers=approvers, checkpoint=cmd.checkpoint)
    return d.accepted()


def decide_tool_call(state: RunState, cmd: DecideApproval, now: datetime) -> Decision:
    """Record the decision on the gated call and hand the attempt out again to resume."""
    st = _paused_attempt(state, cmd.step_id, None)
    if isinstance(st, Rejected):
        return st
    pending = st.awaiting
    if pending is None or pending.tool_call_id != cmd.tool_call_id:
        return Rejected(f"step {cmd.step_id} waits on no tool call {cmd.tool_call_id} (was it "
                        "decided already?)", "stale")
    d = Draft(cmd, now, state)
    d.emit(ApprovalDecided, step_id=st.step_id, attempt=st.attempt, approved=cmd.approved,
           decided_by=cmd.decided_by, comment=cmd.comment, answer=None,
           tool_call_id=cmd.tool_call_id)
    resume = {"checkpoint": pending.checkpoint, "tool_call_id": pending.tool_call_id,
              "approved": cmd.approved, "decided_by": cmd.decided_by, "comment": cmd.comment}
    timer = state.timers.get(ids.timer_id(state.run_id, "step_timeout", st.step_id, st.attempt))
    left_ms = max(1, int((timer.fire_at - now).total_seconds() * 1000)) if timer else None
    spec: Any = {**st.input, "resume": resume} if isinstance(st.input, dict) else st.input
    d.emit(StepResumed, step_id=st.step_id, node_type=st.node_type, attempt=st.attempt,
           input=spec, idempotency_key=ids.idempotency_key(state.run_id, st.step_id, st.attempt),
           timeout_ms=left_ms)
    return d.accepted()


def rejection_text(decided_by: str, comment: str) -> str:
    """What the model reads as a rejected call's result."""
    who = decided_by or "an approver"
    return f"the call was rejected by {who}" + (f": {comment}" if comment else "") + \
        "; it did not run"
