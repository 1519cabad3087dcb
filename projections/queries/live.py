"""Reads that live pages, explain and replay make of one run or a few: the listed runs' statuses,
a run's pending timers and open child runs, the executors' running steps, and a run's rows with
the partition its events were read from (what replay compares its fold with)."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

__all__ = [
    "event_partitions", "open_children", "pending_timers", "run_rows", "running_steps",
    "statuses",
]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def statuses(db: Db, project: str, run_ids: list[str]) -> list[Any]:
    """Status, last seq and how it ended, of each listed run of `project`."""
    rows: list[Any] = await db.fetch(
        "SELECT run_id, status, last_seq, finished_at, duration_ms, error_type, "
        "failed_step_id, cancel_reason, "
        "CASE WHEN status = 'cancelled' THEN error_message END AS cancel_message FROM runs "
        "WHERE run_id = ANY($1::text[]) AND project = $2", run_ids, project)
    return rows


async def pending_timers(db: Db, run_id: str) -> list[dict[str, Any]]:
    """The run's timers still set, soonest first."""
    return [dict(r) for r in await db.fetch(
        "SELECT timer_id, step_id, purpose, fire_at FROM timers WHERE run_id = $1 "
        "AND status = 'set' ORDER BY fire_at", run_id)]


async def open_children(db: Db, run_id: str) -> list[dict[str, Any]]:
    """The run's child runs that have not finished, oldest first."""
    return [dict(r) for r in await db.fetch(
        "SELECT run_id, workflow_id, status, parent_step_id FROM runs WHERE parent_run_id = $1 "
        "AND status NOT IN ('completed', 'failed', 'cancelled') ORDER BY requested_at",
        run_id)]


async def run_rows(db: Db, run_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                                  int | None]:
    """The run's row (any project), its step rows, and the run-events partition the projector
    recorded for it."""
    row = await db.fetchrow("SELECT * FROM runs WHERE run_id = $1", run_id)
    steps = await db.fetch("SELECT * FROM steps WHERE run_id = $1", run_id)
    partition = await db.fetchval(
        "SELECT partition FROM run_events WHERE run_id = $1 LIMIT 1", run_id)
    return (dict(row) if row else None), [dict(r) for r in steps], partition


async def event_partitions(db: Db, run_ids: list[str]) -> list[int]:
    """The run-events partitions the projector read those runs' events from."""
    return [r["partition"] for r in await db.fetch(
        "SELECT DISTINCT partition FROM run_events WHERE run_id = ANY($1::text[])", run_ids)]


async def running_steps(db: Db, node_types: list[str]) -> list[Any]:
    """Run id and worker of each step of those types running (with a worker's id) in an
    unfinished run."""
    rows: list[Any] = await db.fetch(
        "SELECT s.run_id, s.worker_id FROM steps s JOIN runs r USING (run_id) "
        "WHERE s.status = 'running' AND s.node_type = ANY($1::text[]) "
        "AND s.worker_id IS NOT NULL AND s.worker_id <> '' "
        "AND r.status NOT IN ('completed', 'failed', 'cancelled')", node_types)
    return rows
