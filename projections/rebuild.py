"""Rebuild the read models from the start of the log into a fresh schema, for rebuild-and-swap."""

from __future__ import annotations

import asyncio
import time
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
from bend.ops.collector import fewer_collections
from projections import checkpoint
from projections.db import check_schema, connect, database_url
from projections.errors import ProjectionError
from projections.migrate import migrate
from projections.project import (
    Consumed, Decoded, apply_isolating, decode_all, decode_between, fetch_batch,
    projected_topics,
)

__all__ = [
    "REBUILD_BATCH", "REBUILD_LANES", "Progress", "RebuildReport", "SchemaNotFresh", "catch_up",
    "lane_of", "rebuild",
]

log = structlog.get_logger(__name__)


class SchemaNotFresh(ProjectionError):
    """The rebuild's target schema already holds tables."""

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

# Records per transaction of a rebuild: larger than the projector's, as no reader waits on a
# fresh schema; fewer statements per record (measured: 4,000 beat 1,000 by ~10-20%).
REBUILD_BATCH = 5000
# Connections a rebuild applies over (`lane_of`): two keep this 2-core machine's Python and
# Postgres both busy (measured in bench.projector_throughput, --rebuild-lanes).
REBUILD_LANES = 2


async def rebuild(settings: Settings, schema: str, *, topics: Sequence[str] | None = None,
                  max_batch: int = REBUILD_BATCH, lanes: int = REBUILD_LANES,
                  progress: Progress | None = None) -> RebuildReport:
    """Project every record from the start of the log up to its end now into `schema`.

    `schema` must be new or empty; the live schema is not touched, so readers keep working
    while it fills. Records produced after the rebuild starts are left to the projector that
    later runs on the new schema (it resumes from the offsets the rebuild stored).

    The partitions are shared among `lanes` connections (`lane_of`), each applying its share
    in its own transactions, as projectors scaled out over a topic's partitions do: one lane's
    Python work fills the time Postgres spends on another's statements.
    """
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    with fewer_collections():
        return await _rebuild(settings, schema, topics=topics, max_batch=max_batch,
                              lanes=lanes, progress=progress)


def lane_of(partition: int, lanes: int) -> int:
    """The lane applying the records of a topic's partition `partition`. By number alone, so a
    run's commands and its events (both keyed by run id, over as many partitions) share one
    lane, and every row a record writes is written by one lane only."""
    return partition % lanes


async def _rebuild(settings: Settings, schema: str, *, topics: Sequence[str] | None,
                   max_batch: int, lanes: int, progress: Progress | None) -> RebuildReport:
    check_schema(schema)
    topics = list(topics or projected_topics(settings))
    conns: list[asyncpg.Connection] = []
    consumer = clients.consumer(settings.kafka, group_id=None,
                                client_id=f"{settings.kafka.client_id}-rebuild",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=max_batch,
                                # Bulk reading: fuller fetches beat low latency here.
                                fetch_min_bytes=1 << 20, fetch_max_wait_ms=100)
    started = time.perf_counter()
    records = applied = failed = archived = 0
    gaps: list[Gap] = []
    store = ArchiveStore(settings.archive_dir())
    try:
        conns.append(await connect(database_url(settings), schema))
        conn = conns[0]
        if await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema):
            raise SchemaNotFresh(schema)
        await migrate(conn, schema)
        for _ in range(1, lanes):
            conns.append(await connect(database_url(settings), schema))
        await consumer.start()
        partitions = await partitions_of(consumer, topics)
        if partitions:
            begins, ends = await seek_to_start(consumer, partitions)
            # What the archive holds is read from there; the log from where it ends.
            archived_to, gaps = _after_archive(store, partitions, begins, ends)
            for tp, start in archived_to.items():
                consumer.seek(tp, max(start, begins[tp]))
            log_starts = {tp: max(archived_to.get(tp, 0), begins[tp]) for tp in partitions}
            total = sum(archived_to.values()) + sum(max(ends[tp] - log_starts[tp], 0)
                                                    for tp in partitions)
            decode = codec_for(settings).decode
            # The fresh schema has no reader and a crash discards it: commits need not wait for
            # the disk, and the indexes no write reads are built once, after the load.
            for each in conns:
                await each.execute("SET synchronous_commit = off")
            deferred = await _drop_deferrable_indexes(conn, schema)

            async def fetch() -> list[Decoded]:
                if not await _behind(consumer, ends):
                    return []
                batch = [r for r in await fetch_batch(consumer, 500, max_batch * lanes)
                         if r.offset < ends[TopicPartition(r.topic, r.partition)]]
                return await decode_between(batch, decode)

            async def apply(lane: int, batch: list[Decoded]) -> None:
                nonlocal records, applied, failed
                if not batch:
                    return
                result = await apply_isolating(conns[lane], batch, schema)
                records += len(batch)
                applied += result.applied
                failed += result.failed
                if progress is not None:
                    progress(records, total)

            async def unarchive(lane: int, parts: list[tuple[TopicPartition, int]]) -> None:
                nonlocal archived
                for tp, end in parts:
                    chunk: list[Consumed] = []
                    for rec in store.read(tp.topic, tp.partition, 0, end):
                        chunk.append(Consumed(rec.topic, rec.partition, rec.offset, rec.value,
                                              rec.key, (), rec.timestamp))
                        if len(chunk) >= max_batch:
                            await apply(lane, await decode_between(chunk, decode))
                            archived += len(chunk)
                            chunk = []
                    if chunk:
                        await apply(lane, await decode_between(chunk, decode))
                        archived += len(chunk)

            await asyncio.gather(*(
                unarchive(lane, [(tp, end) for tp, end in sorted(archived_to.items())
                                 if lane_of(tp.partition, lanes) == lane])
                for lane in range(lanes)))
            # Fetch and decode the next batch while the lanes apply this one.
            batch = await fetch()
            while batch or await _behind(consumer, ends):
                shares: list[list[Decoded]] = [[] for _ in range(lanes)]
                for item in batch:
                    shares[lane_of(item.consumed.partition, lanes)].append(item)
                # The lanes' tasks first, so their queries go out before the fetch.
                applying = asyncio.gather(*(apply(lane, share)
                                            for lane, share in enumerate(shares)))
                batch, _ = await asyncio.gather(fetch(), applying)
            await _create_indexes(conn, deferred)
    finally:
        await consumer.stop()
        await asyncio.gather(*(each.close() for each in conns), return_exceptions=True)
    report = RebuildReport(schema, records, applied, failed, time.perf_counter() - started,
                           archived, tuple(gaps))
    log.info("projections_rebuilt", schema=schema, records=records, applied=applied,
             failed=failed, archived=archived, gaps=[str(g) for g in gaps], lanes=lanes,
             seconds=round(report.seconds, 2))
    return report


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
    with fewer_collections():
        return await _catch_up(settings, schema, targets, max_batch)


async def _catch_up(settings: Settings, schema: str, targets: Mapping[tuple[str, int], int],
                    max_batch: int) -> int:
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
