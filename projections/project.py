"""Applies consumed records to the read models: a batch and its offsets in one transaction.

Run events pass the run gate (`runs.gate`: appended to `run_events` unless already there)
and workflow events the audit gate; only what a gate lets through is projected further, so a
redelivered or re-emitted record changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple, TypeGuard

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer

from bend.contracts.topics import topic_name
from bend.core.commands import CancelRun, Command, StartRun
from bend.core.errors import BendError
from bend.core.events import (
    AgentLlmCallRecorded, BacktestRequested, ComponentRegistered, DeadLettered,
    DeadLetterRedriven, Event,
    RunCancelled, RunCompleted, RunFailed, RunRequested, RunStarted, TimerFired, TimerSet,
    TriggerFired,
    TriggerFailed, TriggerRegistered, TriggerRemoved, TriggerUpdated,
)
from bend.kafka.position import Position
from bend.settings import Settings
from projections import audit, checkpoint, dead_letters, llm_usage, runs, steps, timers
from projections import backtests, components, triggers, workflows
from projections.fold import Fold
from projections.writes import Write, execute_in_order, execute_in_waves

__all__ = [
    "PROJECTED_KINDS", "BatchResult", "Consumed", "DeadLetterFailed", "Decoded", "OnFailed",
    "Unprojectable",
    "apply_batch", "apply_decoded", "apply_isolating", "decode_all", "decode_between",
    "fetch_batch",
    "projected_topics", "writes_for",
]

log = structlog.get_logger(__name__)

# Every topic whose records change a read model. Commands are read for StartRun and CancelRun
# only, so a run shows as queued (and a `?wait_for=` on a command's position works) before
# the orchestrator has taken it.
PROJECTED_KINDS = ("workflows", "runs", "commands", "triggers", "dead_letters")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Decode = Callable[[bytes], Event | Command]
Record = Event | Command


def projected_topics(settings: Settings) -> list[str]:
    """The names of the topics the projector consumes."""
    return [topic_name(kind, settings) for kind in PROJECTED_KINDS]


class Consumed(NamedTuple):
    """One record as read from Kafka. A named tuple: one is made per record read, at a third of
    a frozen dataclass's cost."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None  # the record's Kafka timestamp

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


class DeadLetterFailed(BendError):
    """A record the read models cannot hold could not be dead-lettered; nothing was stored."""


async def fetch_batch(consumer: AIOKafkaConsumer, timeout_ms: int,
                      max_records: int) -> list[Consumed]:
    """Wait up to `timeout_ms` for records, then take what else is already fetched (up to
    `max_records`): batches grow under load without adding latency when the log is quiet."""
    out: list[Consumed] = []
    wait = timeout_ms
    while len(out) < max_records:
        fetched = await consumer.getmany(timeout_ms=wait, max_records=max_records - len(out))
        if not fetched:
            break
        out += [Consumed(tp.topic, tp.partition, m.offset, m.value, m.key, tuple(m.headers),
                         m.timestamp)
                for tp, messages in fetched.items() for m in messages]
        wait = 0
    return out


def _is_run_event(record: Record) -> TypeGuard[Event]:
    return isinstance(record, Event) and record.topic_kind == "runs"


def _is_workflow_event(record: Record) -> TypeGuard[Event]:
    # Only audited events pass the audit gate; the others on the topic (ComponentRegistered)
    # are kept idempotent by their own tables' keys.
    return (isinstance(record, Event) and record.topic_kind == "workflows"
            and type(record) in audit.AUDITED)


def writes_for(record: Record) -> list[Write]:
    """The writes a record makes once past its gate (none for commands not projected)."""
    match record:
        case StartRun() | CancelRun():
            return runs.writes(record)
        case Command():
            return []
        case (TriggerFired() | TriggerRegistered() | TriggerUpdated() | TriggerRemoved()
              | TriggerFailed()):
            return triggers.writes(record)
        case DeadLettered():
            return [*dead_letters.writes(record), *audit.writes(record)]
        case DeadLetterRedriven():
            return dead_letters.writes(record)
        case ComponentRegistered():
            return components.writes(record)
        case BacktestRequested():
            return backtests.writes(record)
        case Event() if record.topic_kind == "workflows":
            return workflows.writes(record)
        case RunRequested() | RunStarted() | RunCompleted() | RunFailed() | RunCancelled():
            return [*runs.writes(record), *audit.writes(record)]
        case TimerSet() | TimerFired():
            return timers.writes(record)
        case AgentLlmCallRecorded():
            return llm_usage.writes(record)
        case Event() if getattr(record, "step_id", None) is not None:
            return steps.writes(record)
    return []


async def _project(conn: asyncpg.Connection, pending: Sequence[tuple[Consumed, Record]], *,
                   folded: bool) -> int:
    """Gate, then write; the number of records that changed the read models.

    `folded`: the run-side rows are folded in memory and written once each (`projections.fold`);
    otherwise every record's own statements run in order (the reference, for one record alone).
    """
    for _, record in pending:
        if _is_run_event(record) and record.run_id is None:
            raise Unprojectable(f"{record.event_type} {record.event_id} on the run topic has "
                                "no run_id; fix its producer, then re-drive the record")
    fresh = await runs.gate(conn, [(r, c) for c, r in pending if _is_run_event(r)])
    fresh |= await audit.gate(conn, [r for _, r in pending if _is_workflow_event(r)])
    fold = Fold() if folded else None
    planned: list[Write] = []
    newest: dict[str, Event] = {}
    applied = 0
    for _, record in pending:
        gated = _is_run_event(record) or _is_workflow_event(record)
        if gated:
            if record.event_id not in fresh:
                continue
            fresh.discard(record.event_id)  # a copy later in the batch is a redelivery
        if fold is not None and fold.add(record):
            if isinstance(record, Event) and type(record) in audit.AUDITED:
                planned.extend(audit.writes(record))
            applied += 1
        else:
            planned.extend(record_writes := writes_for(record))
            applied += bool(gated or record_writes)
        if _is_run_event(record):
            best = newest.get(record.run_id or "")
            if best is None or record.seq > best.seq:
                newest[record.run_id or ""] = record
    if fold is None:
        planned.extend(runs.bump(run_id, ev.seq, ev.occurred_at)
                       for run_id, ev in newest.items() if ev.seq > 0)
        await execute_in_order(conn, planned)
        return applied
    for run_id, ev in newest.items():
        if ev.seq > 0:
            fold.bump(run_id, ev.seq, ev.occurred_at)
    await fold.write(conn)
    await execute_in_waves(conn, planned)
    return applied


class Decoded(NamedTuple):
    """A consumed record and what it holds, or why it cannot be read (one per record read,
    like Consumed)."""

    consumed: Consumed
    record: Record | None
    error: BendError | None = None


def decode_all(records: Sequence[Consumed], decode: Decode) -> list[Decoded]:
    """Decode a batch (before its transaction, so it can overlap the previous one's)."""
    out = []
    for rec in records:
        try:
            out.append(Decoded(rec, decode(rec.value or b"")))
        except BendError as err:  # an undecodable record never becomes decodable
            out.append(Decoded(rec, None, err))
    return out


async def decode_between(records: Sequence[Consumed], decode: Decode,
                         every: int = 250) -> list[Decoded]:
    """`decode_all`, giving the event loop a turn every `every` records: decoding the next batch
    fills the waits on the database of the batch being applied instead of delaying them (the
    loop runs both, so a batch decoded in one go held up every round trip it overlapped)."""
    out: list[Decoded] = []
    for start in range(0, len(records), every):
        out += decode_all(records[start:start + every], decode)
        await asyncio.sleep(0)
    return out


# Told of each record the read models cannot hold, inside the batch's transaction (before its
# offset is stored): the live projector dead-letters it.
OnFailed = Callable[[Consumed, BaseException], Awaitable[None]]


async def apply_batch(conn: asyncpg.Connection, records: Sequence[Consumed], decode: Decode,
                      schema: str, *, isolate: bool = False,
                      on_failed: OnFailed | None = None) -> BatchResult:
    """Decode `records`, then `apply_decoded`."""
    return await apply_decoded(conn, decode_all(records, decode), schema, isolate=isolate,
                               on_failed=on_failed)


async def apply_decoded(conn: asyncpg.Connection, records: Sequence[Decoded], schema: str, *,
                        isolate: bool = False, on_failed: OnFailed | None = None) -> BatchResult:
    """Apply `records` and advance their partitions' offsets in ONE transaction.

    Records below a partition's stored offset were applied before and are skipped. With
    `isolate`, each record runs alone in a savepoint and one that fails is recorded in
    `projection_errors` (and given to `on_failed`) instead of failing the batch.
    """
    applied = failed = 0
    async with conn.transaction():
        stored = await checkpoint.lock(conn, {(r.consumed.topic, r.consumed.partition)
                                              for r in records})
        next_offsets: dict[tuple[str, int], int] = {}
        stamps: dict[tuple[str, int], int] = {}  # each partition's last Kafka timestamp (ms)
        pending: list[tuple[Consumed, Record]] = []
        for item in records:
            rec = item.consumed
            tp = (rec.topic, rec.partition)
            if rec.offset < next_offsets.get(tp, stored[tp]):
                continue
            if tp not in next_offsets and 0 <= stored[tp] < rec.offset:
                # Projected topics are not compacted: records were skipped (a consumer
                # positioned wrongly, or retention deleted what was never projected).
                log.error("projection_gap", topic=rec.topic, partition=rec.partition,
                          stored_next_offset=stored[tp], first_offset=rec.offset)
            next_offsets[tp] = rec.offset + 1
            if rec.timestamp_ms is not None and rec.timestamp_ms >= 0:
                stamps[tp] = rec.timestamp_ms
            if item.record is not None:
                pending.append((rec, item.record))
            else:
                await _skip(conn, rec, item.error or Unprojectable("undecodable"), on_failed)
                failed += 1
        if not isolate:
            applied = await _project(conn, pending, folded=True)
        else:
            for one in pending:
                try:
                    async with conn.transaction():  # a savepoint
                        applied += await _project(conn, [one], folded=False)
                except (asyncpg.PostgresError, BendError, TypeError, ValueError) as err:
                    await _skip(conn, one[0], err, on_failed)
                    failed += 1
        if next_offsets:
            times = {tp: _EPOCH + timedelta(milliseconds=ms) for tp, ms in stamps.items()}
            await checkpoint.advance(conn, next_offsets, times)
            await checkpoint.notify(conn, schema)
    return BatchResult(applied, len(records) - applied - failed, failed)


async def apply_isolating(conn: asyncpg.Connection, records: Sequence[Decoded], schema: str, *,
                          on_failed: OnFailed | None = None) -> BatchResult:
    """Apply a batch whole, and if a record fails it, again record by record in savepoints."""
    try:
        return await apply_decoded(conn, records, schema, on_failed=on_failed)
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
        raise  # the connection is gone: the caller reconnects and seeks back
    except DeadLetterFailed:
        raise  # the dead-letter topic did not take it: the caller tries the batch again
    except Exception as err:  # a record the fast path cannot apply: find it, keep the rest
        log.warning("batch_failed_retrying_isolated", error_type=type(err).__name__,
                    error=str(err)[:500])
        return await apply_decoded(conn, records, schema, isolate=True, on_failed=on_failed)


async def _skip(conn: asyncpg.Connection, rec: Consumed, err: BaseException,
                on_failed: OnFailed | None) -> None:
    log.error("record_not_projected", topic=rec.topic, partition=rec.partition,
              offset=rec.offset, error_type=type(err).__name__, reason=str(err)[:500],
              dead_lettered=on_failed is not None)
    await checkpoint.record_error(conn, rec.topic, rec.partition, rec.offset, err)
    if on_failed is not None:
        await on_failed(rec, err)
