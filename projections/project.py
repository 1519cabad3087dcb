"""Applies consumed records to the read models: one record, or one batch with its offsets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from bend.contracts.topics import topic_name
from bend.core.commands import CancelRun, Command, StartRun
from bend.core.errors import BendError
from bend.core.events import (
    AgentLlmCallRecorded, DeadLettered, Event, RunCancelled, RunCompleted, RunFailed,
    RunRequested, RunStarted, TimerFired, TimerSet, TriggerFired,
)
from bend.kafka.position import Position
from bend.settings import Settings
from projections import audit, checkpoint, dead_letters, llm_usage, runs, steps, timers
from projections import triggers, workflows

__all__ = [
    "PROJECTED_KINDS", "BatchResult", "Consumed", "Unprojectable", "apply_batch",
    "apply_isolating", "project_record", "projected_topics",
]

log = structlog.get_logger(__name__)

# Every topic whose records change a read model. Commands are read for StartRun and CancelRun
# only, so a run shows as queued (and a `?wait_for=` on a command's position works) before
# the orchestrator has taken it.
PROJECTED_KINDS = ("workflows", "runs", "commands", "triggers", "dead_letters")

_RUN_LIFECYCLE = (RunRequested, RunStarted, RunCompleted, RunFailed, RunCancelled)

Decode = Callable[[bytes], Event | Command]


def projected_topics(settings: Settings) -> list[str]:
    """The names of the topics the projector consumes."""
    return [topic_name(kind, settings) for kind in PROJECTED_KINDS]


@dataclass(frozen=True, slots=True)
class Consumed:
    """One record as read from Kafka."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def position(self) -> Position:
        """Where the record sits."""
        return Position(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch did: records that changed the read models, that changed nothing (applied
    before, duplicates, types not projected) and that failed (kept in `projection_errors`)."""

    applied: int
    unchanged: int
    failed: int


class Unprojectable(BendError):
    """A record the read models cannot hold as it is."""

    code = "unprojectable"


async def project_record(conn: asyncpg.Connection, record: Event | Command,
                         pos: Position) -> bool:
    """Apply one record; False if it changed nothing (a duplicate, or a type not projected)."""
    match record:
        case StartRun():
            await runs.queue(conn, record)
        case CancelRun():
            await runs.cancel_requested(conn, record)
        case Command():
            return False
        case TriggerFired():
            await triggers.project(conn, record)
        case DeadLettered():
            await dead_letters.project(conn, record)
        case Event() if record.topic_kind == "workflows":
            if not await audit.project(conn, record):
                return False
            await workflows.project(conn, record)
        case Event() if record.run_id is None:
            raise Unprojectable(f"{record.event_type} {record.event_id} on a run topic has no "
                                "run_id; fix its producer, then re-drive it")
        case Event():
            if not await runs.record(conn, record, pos):
                return False
            await _project_run_event(conn, record)
    return True


async def _project_run_event(conn: asyncpg.Connection, ev: Event) -> None:
    if isinstance(ev, _RUN_LIFECYCLE):
        await runs.project(conn, ev)
        if type(ev) in audit.AUDITED:
            await audit.project(conn, ev)
    elif isinstance(ev, (TimerSet, TimerFired)):
        await timers.project(conn, ev)
    elif isinstance(ev, AgentLlmCallRecorded):
        await llm_usage.project(conn, ev)
    elif getattr(ev, "step_id", None) is not None:
        await steps.project(conn, ev)


async def apply_batch(conn: asyncpg.Connection, records: Sequence[Consumed], decode: Decode,
                      schema: str, *, isolate: bool = False) -> BatchResult:
    """Apply `records` and advance their partitions' offsets in ONE transaction.

    Records below a partition's stored offset were applied before and are skipped. With
    `isolate`, each record runs in a savepoint and one that fails is recorded in
    `projection_errors` instead of failing the batch.
    """
    applied = failed = 0
    async with conn.transaction():
        stored = await checkpoint.lock(conn, {(r.topic, r.partition) for r in records})
        next_offsets: dict[tuple[str, int], int] = {}
        for rec in records:
            tp = (rec.topic, rec.partition)
            expected = next_offsets.get(tp, stored[tp])
            if rec.offset < expected:
                continue
            next_offsets[tp] = rec.offset + 1
            try:
                record = decode(rec.value or b"")
            except BendError as err:  # an undecodable record never becomes decodable
                await _skip(conn, rec, err)
                failed += 1
                continue
            if not isolate:
                applied += await project_record(conn, record, rec.position)
                continue
            try:
                async with conn.transaction():  # a savepoint
                    applied += await project_record(conn, record, rec.position)
            except (asyncpg.PostgresError, BendError, TypeError, ValueError) as err:
                await _skip(conn, rec, err)
                failed += 1
        if next_offsets:
            await checkpoint.advance(conn, next_offsets)
            await checkpoint.notify(conn, schema)
    return BatchResult(applied, len(records) - applied - failed, failed)


async def apply_isolating(conn: asyncpg.Connection, records: Sequence[Consumed], decode: Decode,
                          schema: str) -> BatchResult:
    """`apply_batch`, and if a record fails it, the batch again record by record in savepoints."""
    try:
        return await apply_batch(conn, records, decode, schema)
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
        raise  # the connection is gone: the caller reconnects and seeks back
    except Exception as err:  # a record the fast path cannot apply: find it, keep the rest
        log.warning("batch_failed_retrying_isolated", error_type=type(err).__name__,
                    error=str(err)[:500])
        return await apply_batch(conn, records, decode, schema, isolate=True)


async def _skip(conn: asyncpg.Connection, rec: Consumed, err: BaseException) -> None:
    log.error("record_not_projected", topic=rec.topic, partition=rec.partition,
              offset=rec.offset, error_type=type(err).__name__, reason=str(err)[:500])
    await checkpoint.record_error(conn, rec.topic, rec.partition, rec.offset, err)
