"""Reads of `runs`, `steps`, `step_attempts`, `run_events` and `llm_usage`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

__all__ = [
    "FINISHED", "attempts", "events", "exists", "get_run", "list_runs", "pending_approvals",
    "pending_tool_calls", "started_with", "step", "steps", "usage",
]

FINISHED = frozenset({"completed", "failed", "cancelled"})

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection

_SUMMARY = """run_id, workflow_id, workflow_version, status, error_type, error_message,
              failed_step_id, idempotency_key, trigger_id, parent_run_id, forked_from_run_id,
              cancel_requested_at, requested_at, started_at, finished_at, duration_ms,
              last_seq, last_event_at, backtest_id"""


async def get_run(db: Db, project: str, run_id: str) -> dict[str, Any] | None:
    """One run of `project` with its input, output and pinned definition, or None."""
    row = await db.fetchrow("SELECT * FROM runs WHERE run_id = $1 AND project = $2",
                            run_id, project)
    return dict(row) if row else None


async def started_with(db: Db, run_id: str) -> dict[str, Any] | None:
    """The definition, input and backtest of a run of any project (what the workers that follow
    run ends act on), or None."""
    row = await db.fetchrow("SELECT definition, input, backtest_id FROM runs WHERE run_id = $1",
                            run_id)
    return dict(row) if row else None


async def exists(db: Db, run_id: str) -> bool:
    """Whether the read model holds a run of that id (any project)."""
    return bool(await db.fetchval("SELECT 1 FROM runs WHERE run_id = $1", run_id))


async def list_runs(db: Db, project: str, *, workflow_id: str | None = None,
                    statuses: list[str] | None = None, since: datetime | None = None,
                    until: datetime | None = None, after: tuple[datetime, str] | None = None,
                    limit: int = 50, trigger_id: str | None = None,
                    before: tuple[datetime, str] | None = None,
                    backtest_id: str | None = None,
                    include_backtests: bool = False) -> list[dict[str, Any]]:
    """Runs of `project`, newest request first, filtered, after the cursor's row.

    With `before` (paging back), the `limit` runs just newer than that row, still newest first.
    Backtest runs are left out unless `include_backtests`, or `backtest_id` names their backtest.
    """
    where = ["project = $1"]
    args: list[Any] = [project]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if workflow_id:
        where.append(f"workflow_id = {arg(workflow_id)}")
    if statuses:
        where.append(f"status = ANY({arg(statuses)}::text[])")
    if since is not None:
        where.append(f"requested_at >= {arg(since)}")
    if until is not None:
        where.append(f"requested_at < {arg(until)}")
    if trigger_id:
        where.append(f"trigger_id = {arg(trigger_id)}")
    if backtest_id:
        where.append(f"backtest_id = {arg(backtest_id)}")
    elif not include_backtests:
        where.append("backtest_id IS NULL")
    if after is not None:
        where.append(f"(requested_at, run_id) < ({arg(after[0])}, {arg(after[1])})")
    order = "DESC"
    if before is not None:
        where.append(f"(requested_at, run_id) > ({arg(before[0])}, {arg(before[1])})")
        order = "ASC"
    rows = await db.fetch(
        f"SELECT {_SUMMARY} FROM runs WHERE {' AND '.join(where)} "
        f"ORDER BY requested_at {order}, run_id {order} LIMIT {arg(limit)}", *args)
    found = [dict(r) for r in rows]
    return found[::-1] if before is not None else found


async def progress(db: Db, run_id: str) -> tuple[str, int] | None:
    """A run's status and the highest seq of its projected events (0: none yet), or None for
    a run the read model does not hold: what a follower waits on."""
    row = await db.fetchrow(
        "SELECT status, (SELECT coalesce(max(seq), 0) FROM run_events e WHERE e.run_id = r.run_id)"
        " AS last_seq FROM runs r WHERE run_id = $1", run_id)
    return None if row is None else (row["status"], row["last_seq"])


async def steps(db: Db, run_id: str) -> list[dict[str, Any]]:
    """The run's steps, in the order they were first scheduled."""
    rows = await db.fetch("SELECT * FROM steps WHERE run_id = $1 "
                          "ORDER BY scheduled_at NULLS LAST, step_id", run_id)
    return [dict(r) for r in rows]


async def step(db: Db, run_id: str, step_id: str) -> dict[str, Any] | None:
    """One step of the run (its latest attempt's view), or None if it never began."""
    row = await db.fetchrow("SELECT * FROM steps WHERE run_id = $1 AND step_id = $2",
                            run_id, step_id)
    return dict(row) if row else None


async def pending_approvals(db: Db, project: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """Approval steps waiting for a decision in `project`'s unfinished runs, oldest first."""
    rows = await db.fetch(
        "SELECT s.run_id, s.step_id, s.input, s.scheduled_at, r.workflow_id, "
        "r.workflow_version, r.status AS run_status FROM steps s JOIN runs r USING (run_id) "
        "WHERE r.project = $1 AND s.node_type = 'approval' AND s.status = 'scheduled' "
        "AND r.status NOT IN ('completed', 'failed', 'cancelled') "
        "ORDER BY s.scheduled_at, s.run_id, s.step_id LIMIT $2", project, limit)
    return [dict(r) for r in rows]


# A gated tool call waits until its step's next event: its decision, or the attempt's end.
_TOOL_CALL_WAITING = """
NOT EXISTS (SELECT 1 FROM run_events d WHERE d.run_id = e.run_id AND d.step_id = e.step_id
            AND d.seq > e.seq AND d.event_type IN ('ApprovalDecided', 'StepScheduled',
            'StepSucceeded', 'StepFailed', 'StepTimedOut', 'StepCancelled'))
"""


async def pending_tool_calls(db: Db, project: str, *, run_id: str | None = None,
                             limit: int = 200) -> list[dict[str, Any]]:
    """Gated tool calls of agent steps waiting for a decision in `project`'s unfinished runs
    (of `run_id` only, if given), oldest first: their ToolApprovalRequested payloads."""
    rows = await db.fetch(
        "SELECT e.run_id, e.step_id, e.payload, e.occurred_at, r.workflow_id, "
        "r.workflow_version FROM runs r JOIN run_events e ON e.run_id = r.run_id "
        "AND e.event_type = 'ToolApprovalRequested' "
        "WHERE r.project = $1 AND ($2::text IS NULL OR r.run_id = $2) "
        "AND r.status NOT IN ('completed', 'failed', 'cancelled') AND "
        f"{_TOOL_CALL_WAITING} ORDER BY e.occurred_at, e.run_id, e.step_id LIMIT $3",
        project, run_id, limit)
    return [dict(r) for r in rows]


async def attempts(db: Db, run_id: str) -> list[dict[str, Any]]:
    """Every attempt of every step of the run."""
    rows = await db.fetch("SELECT * FROM step_attempts WHERE run_id = $1 "
                          "ORDER BY scheduled_at NULLS LAST, step_id, attempt", run_id)
    return [dict(r) for r in rows]


async def events(db: Db, run_id: str, *, after_seq: int = 0, types: list[str] | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
    """The run's events with seq above `after_seq`, in seq order."""
    where, args = "run_id = $1 AND seq > $2", [run_id, after_seq]
    if types:
        args.append(types)
        where += " AND event_type = ANY($3::text[])"
    args.append(limit)
    rows = await db.fetch(
        f"SELECT seq, event_id, event_type, step_id, occurred_at, payload, topic, partition, "
        f"\"offset\" FROM run_events WHERE {where} ORDER BY seq, occurred_at, event_id "
        f"LIMIT ${len(args)}", *args)
    return [dict(r) for r in rows]


async def usage(db: Db, run_id: str) -> list[dict[str, Any]]:
    """LLM calls, tokens and latency per model of the run."""
    rows = await db.fetch("SELECT model, calls, prompt_tokens, completion_tokens, latency_ms "
                          "FROM llm_usage WHERE run_id = $1 ORDER BY model", run_id)
    return [dict(r) for r in rows]
