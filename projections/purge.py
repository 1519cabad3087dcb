"""Purging old runs from the read models: finished runs whose end is older than a cutoff lose
their rows (run, events, steps, attempts, timers, LLM usage) in batches, and backtests asked for
before it theirs; the log and the archive keep their records, so replay, fork and a rebuild
still see them (a rebuild brings the rows back: purge again after one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from projections.queries.runs import FINISHED

__all__ = ["PurgeReport", "purge_finished_runs"]

log = structlog.get_logger(__name__)

# One batch in one statement: the doomed runs (oldest end first), their rows in every table
# keyed by run, then the runs themselves.
_PURGE = """
WITH doomed AS (
    SELECT run_id FROM runs
    WHERE status = ANY($1::text[]) AND finished_at < $2
    ORDER BY finished_at LIMIT $3
    FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM run_events WHERE run_id IN (SELECT run_id FROM doomed) RETURNING 1
), steps AS (
    DELETE FROM steps WHERE run_id IN (SELECT run_id FROM doomed) RETURNING 1
), attempts AS (
    DELETE FROM step_attempts WHERE run_id IN (SELECT run_id FROM doomed) RETURNING 1
), timers AS (
    DELETE FROM timers WHERE run_id IN (SELECT run_id FROM doomed) RETURNING 1
), usage AS (
    DELETE FROM llm_usage WHERE run_id IN (SELECT run_id FROM doomed) RETURNING 1
), gone AS (
    DELETE FROM runs WHERE run_id IN (SELECT run_id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS runs, (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM steps) + (SELECT count(*) FROM attempts)
       + (SELECT count(*) FROM timers) + (SELECT count(*) FROM usage) AS other_rows
"""


_PURGE_BACKTESTS = """
WITH gone AS (DELETE FROM backtests WHERE requested_at < $1 RETURNING backtest_id),
pairs AS (DELETE FROM backtest_runs WHERE backtest_id IN (SELECT backtest_id FROM gone))
SELECT count(*) FROM gone
"""


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge deleted."""

    runs: int
    events: int
    other_rows: int
    backtests: int = 0


async def purge_finished_runs(conn: asyncpg.Connection, finished_before: datetime, *,
                              batch: int = 1000) -> PurgeReport:
    """Delete the rows of runs that finished before `finished_before`, `batch` runs at a time
    (each batch its own transaction, so readers and the projector wait on none for long)."""
    runs = events = other = 0
    while True:
        row = await conn.fetchrow(_PURGE, sorted(FINISHED), finished_before, batch)
        assert row is not None
        runs, events, other = runs + row["runs"], events + row["events"], other + row["other_rows"]
        if row["runs"] < batch:
            break
    backtests = await conn.fetchval(_PURGE_BACKTESTS, finished_before)
    log.info("runs_purged", finished_before=finished_before.isoformat(), runs=runs,
             events=events, other_rows=other, backtests=backtests)
    return PurgeReport(runs, events, other, backtests)
