"""Projects run events into `runs` and `run_events`; queued and cancel-requested runs from commands.

`record` is the gate every run event passes first: it appends the event to `run_events` unless
the run already holds that event id or that seq, so a redelivered or re-emitted event is
never applied twice.
"""

from __future__ import annotations

import asyncpg

from bend.core.commands import CancelRun, StartRun
from bend.core.events import (
    Event, RunCancelled, RunCompleted, RunFailed, RunRequested, RunStarted,
)
from bend.kafka.position import Position
from projections.payload import payload_of

__all__ = ["cancel_requested", "project", "queue", "record"]

_RECORD = """
WITH fresh AS (
    INSERT INTO run_events (event_id, run_id, seq, event_type, step_id, occurred_at, payload,
                            topic, partition, "offset")
    SELECT $1, $2, $3::bigint, $4, $5, $6, $7, $8, $9, $10
    WHERE $3::bigint = 0
       OR NOT EXISTS (SELECT 1 FROM runs WHERE run_id = $2 AND last_seq >= $3::bigint)
    ON CONFLICT DO NOTHING
    RETURNING run_id, seq, occurred_at
), bumped AS (
    UPDATE runs SET last_seq = greatest(runs.last_seq, fresh.seq),
                    last_event_at = fresh.occurred_at
    FROM fresh WHERE runs.run_id = fresh.run_id
)
SELECT count(*) FROM fresh
"""

# A StartRun seen before its RunRequested shows the run as queued; RunRequested overwrites
# every column this sets, so the order the two topics are read in does not matter.
_QUEUE = """
INSERT INTO runs (run_id, workflow_id, workflow_version, status, input, definition,
                  idempotency_key, trigger_id, parent_run_id, parent_step_id, forked_from_run_id,
                  fork_step_id, tenant, project, requested_at)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (run_id) DO NOTHING
"""

_REQUESTED = """
INSERT INTO runs (run_id, workflow_id, workflow_version, status, input, definition,
                  idempotency_key, trigger_id, parent_run_id, parent_step_id, forked_from_run_id,
                  fork_step_id, tenant, project, requested_at, last_seq, last_event_at)
VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $14)
ON CONFLICT (run_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id, workflow_version = EXCLUDED.workflow_version,
    status = CASE WHEN runs.status = 'queued' THEN 'pending' ELSE runs.status END,
    input = EXCLUDED.input, definition = EXCLUDED.definition,
    idempotency_key = EXCLUDED.idempotency_key, trigger_id = EXCLUDED.trigger_id,
    parent_run_id = EXCLUDED.parent_run_id, parent_step_id = EXCLUDED.parent_step_id,
    forked_from_run_id = EXCLUDED.forked_from_run_id, fork_step_id = EXCLUDED.fork_step_id,
    tenant = EXCLUDED.tenant, project = EXCLUDED.project, requested_at = EXCLUDED.requested_at,
    last_seq = greatest(runs.last_seq, EXCLUDED.last_seq), last_event_at = EXCLUDED.last_event_at
"""

_STARTED = """
UPDATE runs SET started_at = $2,
    status = CASE WHEN status IN ('queued', 'pending') THEN 'running' ELSE status END
WHERE run_id = $1
"""

_ELAPSED_MS = "(extract(epoch FROM ($2 - coalesce(started_at, requested_at))) * 1000)::bigint"

_COMPLETED = """
UPDATE runs SET status = 'completed', output = $3, finished_at = $2,
    duration_ms = CASE WHEN $4::bigint > 0 THEN $4::bigint ELSE """ + _ELAPSED_MS + """ END
WHERE run_id = $1
"""

_FAILED = """
UPDATE runs SET status = 'failed', error_type = $3, error_message = $4, failed_step_id = $5,
    finished_at = $2, duration_ms = """ + _ELAPSED_MS + """
WHERE run_id = $1
"""

# The cancel request's own columns belong to CancelRun; RunCancelled records the outcome.
_CANCELLED = """
UPDATE runs SET status = 'cancelled', error_type = 'RunCancelled', error_message = $3,
    finished_at = $2, duration_ms = """ + _ELAPSED_MS + """
WHERE run_id = $1
"""

_CANCEL_REQUESTED = """
UPDATE runs SET cancel_requested_at = $2, cancel_requested_by = $3, cancel_reason = $4
WHERE run_id = $1 AND cancel_requested_at IS NULL
"""


async def record(conn: asyncpg.Connection, ev: Event, pos: Position) -> bool:
    """Append `ev` to its run's log; False if the run already has it (then apply nothing)."""
    step_id = getattr(ev, "step_id", None)
    added = await conn.fetchval(
        _RECORD, ev.event_id, ev.run_id, ev.seq, ev.event_type, step_id, ev.occurred_at,
        payload_of(ev), pos.topic, pos.partition, pos.offset)
    return added == 1


async def project(conn: asyncpg.Connection, ev: Event) -> None:
    """Apply one run-lifecycle event to its `runs` row."""
    match ev:
        case RunRequested():
            await conn.execute(
                _REQUESTED, ev.run_id, ev.workflow_id, ev.workflow_version, ev.input,
                ev.definition, ev.idempotency_key, ev.trigger_id, ev.parent_run_id,
                ev.parent_step_id, ev.forked_from_run_id, ev.fork_step_id, ev.tenant,
                ev.project, ev.occurred_at, ev.seq)
        case RunStarted():
            await conn.execute(_STARTED, ev.run_id, ev.occurred_at)
        case RunCompleted():
            await conn.execute(_COMPLETED, ev.run_id, ev.occurred_at, ev.output, ev.duration_ms)
        case RunFailed():
            await conn.execute(_FAILED, ev.run_id, ev.occurred_at, ev.error_type, ev.message,
                               ev.step_id)
        case RunCancelled():
            await conn.execute(_CANCELLED, ev.run_id, ev.occurred_at, ev.reason)


async def queue(conn: asyncpg.Connection, cmd: StartRun) -> None:
    """Show a run asked for through the commands topic as queued until the orchestrator takes it."""
    await conn.execute(
        _QUEUE, cmd.run_id, cmd.workflow_id, cmd.workflow_version, cmd.input, cmd.definition,
        cmd.idempotency_key, cmd.trigger_id, cmd.parent_run_id, cmd.parent_step_id,
        cmd.forked_from_run_id, cmd.fork_step_id, cmd.tenant, cmd.project, cmd.occurred_at)


async def cancel_requested(conn: asyncpg.Connection, cmd: CancelRun) -> None:
    """Note the first cancel request of a run (its outcome comes as RunCancelled)."""
    await conn.execute(_CANCEL_REQUESTED, cmd.run_id, cmd.occurred_at, cmd.requested_by,
                       cmd.reason)
