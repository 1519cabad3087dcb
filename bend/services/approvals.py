"""Approvals and signals: the waiting approvals of a project, deciding one, signalling a run.

Waiting approvals are approval steps and gated tool calls of agent steps (bend.core.gates):
both are listed, and decided, through the same doors, by their approvers only.

The checks a person's request needs are made here, against the read models (the run in the
caller's project, the step waiting, the caller one of its approvers, the answer or payload
fitting its schema); the orchestrator decides the command again against the run's own state,
so a request that races another is still refused there.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from bend.core.commands import DecideApproval, SignalRun
from bend.core.graph import compile_definition
from bend.core.nodes import schema_problem
from bend.kafka.position import Position
from bend.security.roles import Principal, require
from bend.services.deps import Deps
from bend.services.errors import (
    ApprovalNotWaiting, ApprovalTimedOut, InvalidAnswer, InvalidSignal, NotAnApprover,
    RunNotOpen, UnknownRun,
)
from projections.queries import runs as queries

__all__ = ["approval_context", "decide_approval", "pending_approvals", "signal_run"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


async def pending_approvals(deps: Deps, principal: Principal) -> list[dict[str, Any]]:
    """The approvals waiting in the caller's project, oldest first, with who may decide each."""
    require(principal, "runs:read")
    rows = await queries.pending_approvals(deps.pool, principal.project)
    out = []
    for call in await queries.pending_tool_calls(deps.pool, principal.project):
        out.append(_tool_call_view(principal, call))
    for row in rows:
        spec = row["input"] if isinstance(row["input"], dict) else {}
        out.append({"run_id": row["run_id"], "step_id": row["step_id"],
                    "workflow_id": row["workflow_id"],
                    "workflow_version": row["workflow_version"],
                    "message": spec.get("message", ""), "approvers": spec.get("approvers"),
                    "answer_schema": spec.get("answer_schema"),
                    "on_timeout": spec.get("on_timeout"), "timeout_at": spec.get("timeout_at"),
                    "waiting_since": row["scheduled_at"],
                    "may_decide": _may_decide(principal, spec)})
    return sorted(out, key=lambda a: (a["waiting_since"] or _EPOCH, a["run_id"], a["step_id"]))


def _tool_call_view(principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
    asked = row["payload"]
    approvers = asked.get("approvers") or {}
    return {"run_id": row["run_id"], "step_id": row["step_id"],
            "workflow_id": row["workflow_id"], "workflow_version": row["workflow_version"],
            "message": f"call {asked['tool_name']} with {json.dumps(asked.get('arguments'))}?",
            "approvers": approvers, "answer_schema": None, "on_timeout": None,
            "timeout_at": None, "waiting_since": row["occurred_at"],
            "tool_call": {"tool_call_id": asked["tool_call_id"], "tool_name": asked["tool_name"],
                          "arguments": asked.get("arguments")},
            "may_decide": _may_decide(principal, {"approvers": approvers})}


async def approval_context(deps: Deps, principal: Principal, run_id: str) -> dict[str, Any]:
    """What an approver reads before deciding: the run's input, the outputs of its finished
    steps, and how many model calls it made so far."""
    require(principal, "runs:read")
    run = await queries.get_run(deps.pool, principal.project, run_id)
    if run is None:
        raise UnknownRun(run_id)
    steps = await queries.steps(deps.pool, run_id)
    usage = await queries.usage(deps.pool, run_id)
    return {"input": run["input"],
            "outputs": {s["step_id"]: s["output"] for s in steps if s["status"] == "succeeded"},
            "llm_calls": sum(u["calls"] for u in usage)}


def _may_decide(principal: Principal, spec: dict[str, Any]) -> bool:
    approvers = spec.get("approvers") or {}
    return principal.role.value in (approvers.get("roles") or ()) or (
        principal.key_id is not None and principal.key_id in (approvers.get("keys") or ()))


async def decide_approval(deps: Deps, principal: Principal, run_id: str, step_id: str, *,
                          approved: bool, comment: str = "", answer: Any = None,
                          tool_call_id: str | None = None) -> Position:
    """Approve or reject the waiting approval `step_id`, or the gated tool call its agent step
    waits on (`tool_call_id`, if given, must name it); where the DecideApproval went."""
    run = await _open_run(deps, principal, run_id, "approvals")
    step = await queries.step(deps.pool, run_id, step_id)
    if step is not None and step["node_type"] == "agent":
        return await _decide_tool_call(deps, principal, run, step_id, approved=approved,
                                       comment=comment, tool_call_id=tool_call_id)
    if step is None or step["node_type"] != "approval":
        raise ApprovalNotWaiting(run_id, step_id, "no approval step by that id has begun"
                                 if step is None else f"it is a {step['node_type']} step")
    if step["status"] != "scheduled":
        raise ApprovalNotWaiting(run_id, step_id, f"it is {step['status']} (decided already, "
                                 "or timed out)")
    spec = step["input"] if isinstance(step["input"], dict) else {}
    timeout_at = spec.get("timeout_at")
    now = datetime.now(timezone.utc)
    if timeout_at and datetime.fromisoformat(timeout_at) <= now:
        raise ApprovalTimedOut(run_id, step_id, timeout_at)
    if not _may_decide(principal, spec):
        approvers = spec.get("approvers") or {}
        raise NotAnApprover(run_id, step_id, approvers.get("roles") or [],
                            approvers.get("keys") or [])
    if approved:
        problem = schema_problem(spec.get("answer_schema"), answer)
        if problem is not None:
            raise InvalidAnswer(run_id, step_id, problem)
    cmd = DecideApproval(**_envelope(run, now), step_id=step_id, approved=approved,
                         decided_by=principal.subject, comment=comment,
                         answer=answer if approved else None)
    return await deps.producer.send(cmd)


async def _decide_tool_call(deps: Deps, principal: Principal, run: dict[str, Any],
                            step_id: str, *, approved: bool, comment: str,
                            tool_call_id: str | None) -> Position:
    run_id = run["run_id"]
    waiting = [c for c in await queries.pending_tool_calls(deps.pool, principal.project,
                                                           run_id=run_id)
               if c["step_id"] == step_id]
    if not waiting:
        raise ApprovalNotWaiting(run_id, step_id, "its agent waits on no gated tool call")
    asked = waiting[-1]["payload"]
    if tool_call_id and tool_call_id != asked["tool_call_id"]:
        raise ApprovalNotWaiting(run_id, step_id, f"it waits on tool call "
                                 f"{asked['tool_call_id']}, not {tool_call_id}")
    if not _may_decide(principal, asked):
        approvers = asked.get("approvers") or {}
        raise NotAnApprover(run_id, step_id, approvers.get("roles") or [],
                            approvers.get("keys") or [])
    cmd = DecideApproval(**_envelope(run, datetime.now(timezone.utc)), step_id=step_id,
                         approved=approved, decided_by=principal.subject, comment=comment,
                         tool_call_id=asked["tool_call_id"])
    return await deps.producer.send(cmd)


async def signal_run(deps: Deps, principal: Principal, run_id: str, name: str,
                     payload: Any = None) -> Position:
    """Send the run the signal `name`; where the SignalRun went."""
    require(principal, "workflows:execute")
    run = await _open_run(deps, principal, run_id, "signals")
    problem = await _signal_problem(deps, run, name, payload)
    if problem is not None:
        raise InvalidSignal(run_id, name, problem)
    cmd = SignalRun(**_envelope(run, datetime.now(timezone.utc)), name=name, payload=payload,
                    sent_by=principal.subject)
    return await deps.producer.send(cmd)


async def _signal_problem(deps: Deps, run: dict[str, Any], name: str,
                          payload: Any) -> str | None:
    waiting = [s for s in await queries.steps(deps.pool, run["run_id"])
               if s["node_type"] == "wait" and s["status"] == "scheduled"
               and isinstance(s["input"], dict) and s["input"].get("signal") == name]
    if waiting:
        schemas = [waiting[0]["input"].get("payload_schema")]
    else:
        _defn, plan = compile_definition(run["definition"])
        nodes = [n for n in plan.nodes.values() if n.type == "wait" and n.signal == name]
        if not nodes:
            return f"no wait step of workflow {run['workflow_id']} waits for a signal by that name"
        schemas = [n.payload_schema for n in nodes]
    for schema in schemas:
        problem = schema_problem(schema, payload)
        if problem is not None:
            return f"the payload does not match its payload_schema: {problem}"
    return None


async def _open_run(deps: Deps, principal: Principal, run_id: str,
                    what: str) -> dict[str, Any]:
    run = await queries.get_run(deps.pool, principal.project, run_id)
    if run is None:
        raise UnknownRun(run_id)
    if run["status"] in queries.FINISHED:
        raise RunNotOpen(run_id, run["status"], what)
    return run


def _envelope(run: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "run_id": run["run_id"],
            "workflow_id": run["workflow_id"], "workflow_version": run["workflow_version"],
            "occurred_at": now, "correlation_id": run["run_id"], "tenant": run["tenant"],
            "project": run["project"]}


