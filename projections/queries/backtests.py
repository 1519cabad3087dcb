"""Reads of `backtests` and `backtest_runs`, and what a comparison needs of both runs of a pair."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

__all__ = ["calls_of", "get_backtest", "list_backtests", "pairs", "runs_of", "steps_of"]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def get_backtest(db: Db, project: str, backtest_id: str) -> dict[str, Any] | None:
    """One backtest of `project`, or None."""
    row = await db.fetchrow("SELECT * FROM backtests WHERE backtest_id = $1 AND project = $2",
                            backtest_id, project)
    return dict(row) if row else None


async def list_backtests(db: Db, project: str, *, workflow_id: str | None = None,
                         limit: int = 50) -> list[dict[str, Any]]:
    """Backtests of `project`, newest first, with how many of their runs have finished."""
    rows = await db.fetch(
        "SELECT b.*, count(p.run_id) AS runs, count(r.run_id) FILTER (WHERE r.status IN "
        "('completed', 'failed', 'cancelled')) AS finished FROM backtests b "
        "LEFT JOIN backtest_runs p USING (backtest_id) LEFT JOIN runs r ON r.run_id = p.run_id "
        "WHERE b.project = $1 AND ($2::text IS NULL OR b.workflow_id = $2) "
        "GROUP BY b.backtest_id ORDER BY b.requested_at DESC, b.backtest_id LIMIT $3",
        project, workflow_id, limit)
    return [dict(r) for r in rows]


async def pairs(db: Db, backtest_id: str) -> list[dict[str, Any]]:
    """Each source run and the backtest run forked from it, in the order they were chosen."""
    rows = await db.fetch("SELECT source_run_id, run_id FROM backtest_runs "
                          "WHERE backtest_id = $1 ORDER BY position", backtest_id)
    return [dict(r) for r in rows]


async def runs_of(db: Db, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The outcome columns of these runs, by run id."""
    rows = await db.fetch("SELECT run_id, status, output, error_type, error_message, "
                          "duration_ms FROM runs WHERE run_id = ANY($1::text[])", run_ids)
    return {r["run_id"]: dict(r) for r in rows}


async def steps_of(db: Db, run_ids: list[str], step_id: str) -> dict[str, dict[str, Any]]:
    """Step `step_id` of these runs (its latest attempt), by run id."""
    rows = await db.fetch("SELECT run_id, status, output, error_type, duration_ms FROM steps "
                          "WHERE run_id = ANY($1::text[]) AND step_id = $2", run_ids, step_id)
    return {r["run_id"]: dict(r) for r in rows}


async def calls_of(db: Db, run_ids: list[str], step_id: str) -> list[dict[str, Any]]:
    """The model calls step `step_id` (and its loop instances) made in these runs."""
    rows = await db.fetch(
        "SELECT run_id, payload FROM run_events WHERE run_id = ANY($1::text[]) "
        "AND event_type = 'AgentLlmCallRecorded' AND (step_id = $2 OR step_id LIKE $3)",
        run_ids, step_id, step_id.replace("\\", "\\\\").replace("%", "\\%")
        .replace("_", "\\_") + "[%")
    return [dict(r) for r in rows]
