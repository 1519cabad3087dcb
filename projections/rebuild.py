"""Rebuild the read models from the start of the log into a fresh schema, for rebuild-and-swap."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.archive.history import Gap, gap_of
from bend.archive.store import ArchiveStore
from bend.contracts.codec import codec_for
from bend.kafka import clients
from bend.kafka.fromstart import seek_to_start
from bend.settings import Settings
from bend.kafka.metadata import partitions_of
from projections import checkpoint
from projections.db import check_schema, connect, database_url
from projections.errors import ProjectionError
from projections.migrate import migrate
from projections.project import (
    Consumed, Decoded, apply_isolating, decode_all, fetch_batch, projected_topics,
)

__all__ = ["Progress", "RebuildReport", "SchemaNotFresh", "catch_up", "rebuild"]

log = structlog.get_logger(__name__)


class SchemaNotFresh(ProjectionError):
    """The rebuild's target schema already holds tables."""

    code = "schema_not_fresh"

    def __init__(self, schema: str) -> None:
        super().__init__(
            f"schema {schema} already holds tables; rebuild into a new schema name, or drop "
            f"it first (DROP SCHEMA {schema} CASCADE) if nothing reads from it"
        )
        self.schema = schema


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild read and applied, and how long it took."""

    schema: str
    records: int
    applied: int
    failed: int
    seconds: float
    archived: int = 0  # of `records`, how many came from the archive (bend.archive)
    gaps: tuple[Gap, ...] = ()  # records neither the archive nor the log holds any more

    @property
    def per_second(self) -> float:
        """Records applied per second of the rebuild."""
        return self.records / self.seconds if self.seconds else 0.0


Progress = Callable[[int, int], None]  # (records read so far, records to read in all)


async def rebuild(settings: Settings, schema: str, *, topics: Sequence[str] | None = None,
                  max_batch: int = 2000, progress: Progress | None = None,
                  workers: int | None = None) -> RebuildReport:
    """Project every record from the start of the log up to its end now into `schema`.

    `schema` must be new or empty; the live schema is not touched, so readers keep working
    while it fills. Records produced after the rebuild starts are left to the projector that
    later runs on the new schema (it resumes from the offsets the rebuild stored).

    With `workers` > 1 (default BEND_DATABASE__REBUILD_WORKERS) the partitions are split by
    partition number over that many processes: a run's records (its commands and its events
    share a partition number) stay in one, so they write disjoint rows.
    """
    check_schema(schema)
    workers = max(1, workers or settings.database.rebuild_workers)
    topics = list(topics or projected_topics(settings))
    conn = await connect(database_url(settings), schema)
    consumer = clients.consumer(settings.kafka, group_id=None,
                                client_id=f"{settings.kafka.client_id}-rebuild",
                                enable_auto_commit=False)
    started = time.perf_counter()
    loaded = _Loaded()
    gaps: list[Gap] = []
    processes = 0
    store = ArchiveStore(settings.archive_dir())
    try:
        if await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema):
            raise SchemaNotFresh(schema)
        await migrate(conn, schema)
        await consumer.start()
        partitions = await partitions_of(consumer, topics)
        if partitions:
            begins = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            # What the archive holds is read from there; the log from where it ends.
            archived_to, gaps = _after_archive(store, partitions, begins, ends)
            plan = [_Span(tp.topic, tp.partition, archived_to.get(tp, 0),
                          max(archived_to.get(tp, 0), begins[tp]), ends[tp])
                    for tp in partitions]
            total = sum(span.records for span in plan)
            # The indexes no write reads are built once, after the load.
            deferred = await _drop_deferrable_indexes(conn, schema)
            groups = [[s for s in plan if s.partition % workers == n] for n in range(workers)]
            groups = [g for g in groups if g]
            processes = len(groups)
            if len(groups) == 1:
                loaded = await _load(settings, schema, groups[0], max_batch, progress, total)
            else:
                loaded = await _load_in_processes(settings, schema, groups, max_batch,
                                                  progress, total, conn)
            await _create_indexes(conn, deferred)
    finally:
        await consumer.stop()
        await conn.close()
    report = RebuildReport(schema, loaded.records, loaded.applied, loaded.failed,
                           time.perf_counter() - started, loaded.archived, tuple(gaps))
    log.info("projections_rebuilt", schema=schema, records=loaded.records,
             applied=loaded.applied, failed=loaded.failed, archived=loaded.archived,
             gaps=[str(g) for g in gaps], processes=processes,
             seconds=round(report.seconds, 2))
    return report


@dataclass(frozen=True, slots=True)
class _Span:
    """What a rebuild reads of one partition: the archive below `archived_to`, then the log
    from `log_from` to `end` (excluded)."""

    topic: str
    partition: int
    archived_to: int
    log_from: int
    end: int

    @property
    def records(self) -> int:
        return self.archived_to + max(self.end - self.log_from, 0)


@dataclass(slots=True)
class _Loaded:
    """What a load read and applied."""

    records: int = 0
    applied: int = 0
    failed: int = 0
    archived: int = 0

    def add(self, other: _Loaded) -> None:
        self.records += other.records
        self.applied += other.applied
        self.failed += other.failed
        self.archived += other.archived


async def _load(settings: Settings, schema: str, spans: Sequence[_Span], max_batch: int,
                progress: Progress | None = None, total: int = 0) -> _Loaded:
    """Apply the spans' records to `schema`: the archived ones, then the log's."""
    conn = await connect(database_url(settings), schema)
    consumer = clients.consumer(settings.kafka, group_id=None,
                                client_id=f"{settings.kafka.client_id}-rebuild",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=max_batch,
                                # Bulk reading: fuller fetches beat low latency here.
                                fetch_min_bytes=1 << 20, fetch_max_wait_ms=100)
    loaded = _Loaded()
    store = ArchiveStore(settings.archive_dir())
    decode = codec_for(settings).decode
    try:
        # The fresh schema has no reader and a crash discards it: commits need not wait for
        # the disk.
        await conn.execute("SET synchronous_commit = off")
        ends = {TopicPartition(s.topic, s.partition): s.end for s in spans}
        tps = list(ends)
        await consumer.start()
        consumer.assign(tps)
        for span in spans:
            consumer.seek(TopicPartition(span.topic, span.partition), span.log_from)

        async def apply(batch: list[Decoded], archived: bool = False) -> None:
            if not batch:
                return
            result = await apply_isolating(conn, batch, schema)
            loaded.records += len(batch)
            loaded.applied += result.applied
            loaded.failed += result.failed
            loaded.archived += len(batch) if archived else 0
            if progress is not None:
                progress(loaded.records, total)

        for span in spans:
            if not span.archived_to:
                continue
            chunk: list[Consumed] = []
            for rec in store.read(span.topic, span.partition, 0, span.archived_to):
                chunk.append(Consumed(rec.topic, rec.partition, rec.offset, rec.value,
                                      rec.key, (), rec.timestamp))
                if len(chunk) >= max_batch:
                    await apply(decode_all(chunk, decode), archived=True)
                    chunk = []
            await apply(decode_all(chunk, decode), archived=True)

        async def fetch() -> list[Decoded]:
            if not await _behind(consumer, ends):
                return []
            batch = [r for r in await fetch_batch(consumer, 500, max_batch)
                     if r.offset < ends[TopicPartition(r.topic, r.partition)]]
            return decode_all(batch, decode)

        # Fetch and decode the next batch while the database applies this one.
        batch = await fetch()
        while batch or await _behind(consumer, ends):
            batch, _ = await asyncio.gather(fetch(), apply(batch))
    finally:
        await consumer.stop()
        await conn.close()
    return loaded


def _load_in_process(settings: Settings, schema: str, spans: list[_Span],
                     max_batch: int) -> _Loaded:
    """`_load` in a worker process (its own event loop, connection and consumer)."""
    return asyncio.run(_load(settings, schema, spans, max_batch))


async def _load_in_processes(settings: Settings, schema: str, groups: list[list[_Span]],
                             max_batch: int, progress: Progress | None, total: int,
                             conn: asyncpg.Connection) -> _Loaded:
    """Each group in a process of its own; progress read from the offsets they store."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(groups), mp_context=context) as pool:
        futures = [loop.run_in_executor(pool, _load_in_process, settings, schema, group,
                                        max_batch) for group in groups]
        done = asyncio.gather(*futures)
        while progress is not None and not done.done():
            await asyncio.wait([done], timeout=0.5)
            applied = await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets "
                "WHERE next_offset > 0")
            progress(min(int(applied), total), total)
        results = await done
    loaded = _Loaded()
    for result in results:
        loaded.add(result)
    return loaded


def _after_archive(store: ArchiveStore, partitions: Sequence[TopicPartition],
                   begins: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int],
                   ) -> tuple[dict[TopicPartition, int], list[Gap]]:
    """Per partition, the offset up to which the archive is read (where it holds something),
    and the gaps between archive and log."""
    archived_to: dict[TopicPartition, int] = {}
    gaps: list[Gap] = []
    for tp in partitions:
        archived = store.next_offset(tp.topic, tp.partition)
        if archived is not None:
            archived_to[tp] = min(archived, ends[tp])
        gap = gap_of(tp.topic, tp.partition, archived, begins[tp])
        if gap is not None:
            log.error("rebuild_gap", gap=str(gap))
            gaps.append(gap)
    return archived_to, gaps


# Indexes no projection statement reads: not unique, not behind a constraint.
_DEFERRABLE = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""


async def _drop_deferrable_indexes(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Drop the secondary indexes of a fresh schema; their definitions, to create them again."""
    rows = await conn.fetch(_DEFERRABLE, schema)
    for row in rows:
        await conn.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


async def _create_indexes(conn: asyncpg.Connection, definitions: Sequence[str]) -> None:
    """Build the deferred indexes over the loaded rows (one sort each, not a row at a time)."""
    started = time.perf_counter()
    for definition in definitions:
        await conn.execute(definition)
    log.info("rebuild_indexes_created", indexes=len(definitions),
             seconds=round(time.perf_counter() - started, 2))


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def catch_up(settings: Settings, schema: str, targets: Mapping[tuple[str, int], int], *,
                   max_batch: int = 2000) -> int:
    """Apply to `schema` the records between its stored offsets and `targets` (per partition,
    the next offset to reach); how many records were read. Partitions already there are left."""
    check_schema(schema)
    conn = await connect(database_url(settings), schema)
    records = 0
    try:
        stored = await checkpoint.stored(conn, {t for t, _ in targets})
        ends = {TopicPartition(t, p): n for (t, p), n in targets.items()
                if n > stored.get((t, p), 0)}
        if not ends:
            return 0
        consumer = clients.consumer(settings.kafka, group_id=None,
                                    client_id=f"{settings.kafka.client_id}-catch-up",
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_poll_records=max_batch)
        await consumer.start()
        try:
            begins, _ = await seek_to_start(consumer, list(ends))
            for tp in ends:
                consumer.seek(tp, max(stored.get((tp.topic, tp.partition), 0), begins[tp]))
            decode = codec_for(settings).decode
            while await _behind(consumer, ends):
                batch = [r for r in await fetch_batch(consumer, 200, max_batch)
                         if r.offset < ends[TopicPartition(r.topic, r.partition)]]
                if batch:
                    await apply_isolating(conn, decode_all(batch, decode), schema)
                    records += len(batch)
        finally:
            await consumer.stop()
    finally:
        await conn.close()
    return records
