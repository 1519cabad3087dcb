"""The projector: consumes every projected topic and applies each batch with its offsets atomically.

Kafka offsets are not committed to the group: the read models' own `projection_offsets` are
the truth, and every assignment seeks to them. A crash between consuming and committing the
transaction loses nothing and applies nothing twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from bend.contracts.codec import codec_for
from bend.settings import Settings
from projections import checkpoint
from projections.db import connect, database_url
from projections.migrate import migrate
from projections.project import apply_isolating, fetch_batch, projected_topics

__all__ = ["Projector"]

log = structlog.get_logger(__name__)

_CONNECTION_ERRORS = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


class Projector:
    """Keeps one schema's read models up to date with the log; `await run()` until cancelled."""

    def __init__(self, settings: Settings, *, schema: str | None = None,
                 topics: Sequence[str] | None = None, group_id: str | None = None,
                 max_batch: int = 1000, poll_ms: int = 200) -> None:
        self.settings = settings
        self.schema = schema or settings.database.schema_name
        self.topics = list(topics or projected_topics(settings))
        self.group_id = group_id or f"{settings.kafka.topic_prefix}-projector"
        self.max_batch = max_batch
        self.poll_ms = poll_ms
        self.applied = 0  # records that changed the read models, since start
        self.consumed = 0
        self.ready = asyncio.Event()  # set once partitions are assigned and seeked
        self._decode = codec_for(settings).decode
        self._conn: asyncpg.Connection | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._applying = asyncio.Lock()  # a batch, or a seek after an assignment, at a time

    async def run(self) -> None:
        """Migrate the schema, then consume and apply until cancelled."""
        self._conn = await connect(database_url(self.settings), self.schema)
        await migrate(self._conn, self.schema)
        workers = self.settings.workers
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap,
            client_id=f"{self.settings.kafka.client_id}-projector",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            session_timeout_ms=int(workers.session_timeout_s * 1000),
            heartbeat_interval_ms=int(workers.heartbeat_interval_s * 1000),
        )
        self._consumer.subscribe(self.topics, listener=_SeekToStored(self))
        await self._consumer.start()
        log.info("projector_started", schema=self.schema, group_id=self.group_id,
                 topics=self.topics)
        try:
            while True:
                await self._step()
        finally:
            await self._consumer.stop()
            await self._conn.close()
            log.info("projector_stopped", schema=self.schema, applied=self.applied)

    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this projector holds now (none before it joined)."""
        if self._consumer is None:
            return set()
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def _step(self) -> None:
        assert self._consumer is not None
        records = await fetch_batch(self._consumer, self.poll_ms, self.max_batch)
        if not records:
            return
        assert self._conn is not None
        async with self._applying:
            started = time.perf_counter()
            try:
                result = await apply_isolating(self._conn, records, self._decode, self.schema)
            except _CONNECTION_ERRORS as err:
                log.warning("projector_database_lost", error=str(err))
                await self._reconnect()
                await self._seek_to_stored(self._consumer.assignment())
                return
            self.applied += result.applied
            self.consumed += len(records)
            log.debug("batch_projected", records=len(records), applied=result.applied,
                      failed=result.failed, ms=round((time.perf_counter() - started) * 1000, 1))

    async def _reconnect(self) -> None:
        delay = 0.5
        while True:
            try:
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = await connect(database_url(self.settings), self.schema)
                return
            except Exception as err:  # keep trying: the database may be restarting
                log.warning("projector_reconnect_failed", error=str(err), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _seek_to_stored(self, partitions: set[TopicPartition] | list[TopicPartition]) -> None:
        """Position each partition at its stored next offset (the log's start if none)."""
        assert self._consumer is not None and self._conn is not None
        partitions = list(partitions)
        stored = await checkpoint.stored(self._conn, {tp.topic for tp in partitions})
        fresh = []
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                fresh.append(tp)
            else:
                self._consumer.seek(tp, offset)
        if fresh:
            await self._consumer.seek_to_beginning(*fresh)
        log.info("projector_positioned", partitions=len(partitions), from_start=len(fresh))


class _SeekToStored(ConsumerRebalanceListener):
    """On assignment, seek to the offsets stored with the read models."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Let the batch in flight commit before another projector takes its partitions.
        async with self.projector._applying:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.projector._applying:
            await self.projector._seek_to_stored(assigned)
        self.projector.ready.set()
