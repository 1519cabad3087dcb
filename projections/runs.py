"""Projects run events into `runs` and `run_events`; queued and cancel-requested runs from commands.

`gate` is what every run event passes first: it appends the events to `run_events` unless the
run already holds that event id or that seq, so a redelivered or re-emitted event is never
applied twice. Only the events it lets through are projected further.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import asyncpg

from bend.core.commands import CancelRun, StartRun
from bend.core.events import (
    Event, RunCancelled, RunCompleted, RunFailed, RunRequested, RunStarted,
)
from projections.db import RawJson
from projections.payload import payload_json
from projections.writes import Write

__all__ = ["bump", "gate", "lane", "writes"]

# What a batch's run events may already have in the read models: their ids, their runs'
# (run_id, seq), and how far their runs have been applied.
_SEEN = """
SELECT event_id, NULL::text AS run_id, NULL::bigint AS seq FROM run_events
WHERE event_id = ANY($1::text[])
UNION ALL
SELECT NULL, e.run_id, e.seq FROM run_events e
JOIN unnest($2::text[], $3::bigint[]) AS u (run_id, seq) ON e.run_id = u.run_id AND e.seq = u.seq
WHERE e.seq > 0
UNION ALL
SELECT NULL, run_id, -last_seq FROM runs WHERE run_id = ANY($4::text[])
"""

_COLUMNS = ["event_id", "run_id", "seq", "event_type", "step_id", "occurred_at", "payload", "topic",
            "partition", "offset"]

_BUMP = """
UPDATE runs SET last_seq = $2, last_event_at = $3 WHERE run_id = $1 AND last_seq < $2
"""

# A StartRun seen before its RunRequested shows the run as queued; RunRequested overwrites
# every column this sets, so the order the two topics are read in does not matter.
_QUEUE = """
INSERT INTO runs (run_id, workflow_id, workflow_version, status, input, definition,
                  idempotency_key, trigger_id, parent_run_id, parent_step_id, forked_from_run_id,
                  fork_step_id, tenant, project, requested_at, backtest_id)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (run_id) DO NOTHING
"""

_REQUESTED = """
INSERT INTO runs (run_id, workflow_id, workflow_version, status, input, definition,
                  idempotency_key, trigger_id, parent_run_id, parent_step_id, forked_from_run_id,
                  fork_step_id, tenant, project, requested_at, backtest_id)
VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (run_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id, workflow_version = EXCLUDED.workflow_version,
    status = CASE WHEN runs.status = 'queued' THEN 'pending' ELSE runs.status END,
    input = EXCLUDED.input, definition = EXCLUDED.definition,
    idempotency_key = EXCLUDED.idempotency_key, trigger_id = EXCLUDED.trigger_id,
    parent_run_id = EXCLUDED.parent_run_id, parent_step_id = EXCLUDED.parent_step_id,
    forked_from_run_id = EXCLUDED.forked_from_run_id, fork_step_id = EXCLUDED.fork_step_id,
    tenant = EXCLUDED.tenant, project = EXCLUDED.project, requested_at = EXCLUDED.requested_at,
    backtest_id = EXCLUDED.backtest_id
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


def lane(run_id: str | None) -> tuple[str, str | None]:
    """The lane of writes to one run's `runs` row."""
    return ("run", run_id)


class Placed(Protocol):
    """Where a record sits in the log (a Position, or the consumed record itself)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


async def gate(conn: asyncpg.Connection, items: Sequence[tuple[Event, Placed]]) -> set[str]:
    """Append run events to their runs' logs; the ids of those not already there.

    An event is left out when its id is logged, its run already logs its seq (a re-emitted
    event), or its run's rows have been applied past its seq; a copy later in the batch is left
    out as well. The rest are appended with COPY, in log order.
    """
    if not items:
        return set()
    sequenced = [ev for ev, _ in items if ev.seq > 0]
    keys = ([ev.event_id for ev, _ in items], [ev.run_id for ev in sequenced],
            [ev.seq for ev in sequenced], list({ev.run_id for ev in sequenced}))
    seen = asyncio.create_task(conn.fetch(_SEEN, *keys))
    await asyncio.sleep(0)  # the query goes out; while Postgres looks, the rows are spelled
    try:
        spelled = [(ev.event_id, ev.run_id, ev.seq, ev.event_type, getattr(ev, "step_id", None),
                    ev.occurred_at, RawJson(payload_json(ev)), p.topic, p.partition, p.offset)
                   for ev, p in items]
    except BaseException:
        await asyncio.gather(seen, return_exceptions=True)  # never leave the connection busy
        raise
    found = await seen
    ids, logged, applied = set(), set(), {}
    for r in found:
        if r["event_id"] is not None:
            ids.add(r["event_id"])
        elif r["seq"] > 0:
            logged.add((r["run_id"], r["seq"]))
        else:
            applied[r["run_id"]] = -r["seq"]
    rows = []
    for (ev, _), row in zip(items, spelled, strict=True):
        at = (ev.run_id, ev.seq)
        if ev.event_id in ids or (ev.seq > 0 and (at in logged
                                                 or applied.get(ev.run_id, -1) >= ev.seq)):
            continue
        ids.add(ev.event_id)
        if ev.seq > 0:
            logged.add(at)
        rows.append(row)
    if rows:
        await conn.copy_records_to_table("run_events", records=rows, columns=_COLUMNS)
    return {row[0] for row in rows}


def bump(run_id: str, seq: int, occurred_at: object) -> Write:
    """Move a run's `last_seq` (and `last_event_at`) to the newest event applied."""
    return Write(lane(run_id), _BUMP, (run_id, seq, occurred_at))


def writes(record: Event | StartRun | CancelRun) -> list[Write]:
    """The writes one run-lifecycle event, StartRun or CancelRun makes to its `runs` row."""
    ln = lane(record.run_id)
    match record:
        case RunRequested() | StartRun():
            sql = _REQUESTED if isinstance(record, RunRequested) else _QUEUE
            return [Write(ln, sql, (
                record.run_id, record.workflow_id, record.workflow_version, record.input,
                record.definition, record.idempotency_key, record.trigger_id,
                record.parent_run_id, record.parent_step_id, record.forked_from_run_id,
                record.fork_step_id, record.tenant, record.project, record.occurred_at,
                record.backtest_id))]
        case RunStarted():
            return [Write(ln, _STARTED, (record.run_id, record.occurred_at))]
        case RunCompleted():
            return [Write(ln, _COMPLETED, (record.run_id, record.occurred_at, record.output,
                                           record.duration_ms))]
        case RunFailed():
            return [Write(ln, _FAILED, (record.run_id, record.occurred_at, record.error_type,
                                        record.message, record.step_id))]
        case RunCancelled():
            return [Write(ln, _CANCELLED, (record.run_id, record.occurred_at, record.reason))]
        case CancelRun():
            return [Write(ln, _CANCEL_REQUESTED, (record.run_id, record.occurred_at,
                                                  record.requested_by, record.reason))]
    return []
