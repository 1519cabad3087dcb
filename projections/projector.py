"""The projector: consumes every projected topic and applies each batch with its offsets atomically.

Kafka offsets are not committed to the group: the read models' own `projection_offsets` are
the truth, and every assignment seeks to them. A crash between consuming and committing the
transaction loses nothing and applies nothing twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from bend.contracts.codec import codec_for, prime
from bend.contracts.topics import topic_name
from bend.core.events import DeadLettered
from bend.kafka import clients
from bend.kafka.headers import headers_json
from bend.kafka.producer import RecordProducer
from bend.ops.collector import fewer_collections
from bend.ops.metrics import DEAD_LETTERS
from bend.settings import Settings
from projections import checkpoint
from projections.db import connect, database_url
from projections.migrate import migrate
from projections.project import (
    Consumed, DeadLetterFailed, Decoded, apply_isolating, decode_between, fetch_batch,
    projected_topics,
)

__all__ = ["Projector", "SeekClock"]

log = structlog.get_logger(__name__)

_CONNECTION_ERRORS = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)
_DEAD_LETTER_IDS = uuid.UUID("0d7a3c52-8f0e-4a57-9b6e-2f1c5d8e9a41")


class SeekClock:
    """Seek generations, so a batch is applied only if no seek touched its fetch.

    The count moves when a seek begins and again when it ends, so it is odd while one is under
    way. Resetting a partition to its beginning is awaited, and a fetch running meanwhile can
    return records read from the new position before the seek has finished: such a batch is
    not clean, and neither is one fetched before a seek. Neither may be applied, and since the
    consumer's position has moved past their records, the projector seeks to its stored
    offsets again (with no fetch under way) before reading on.
    """

    def __init__(self) -> None:
        self.now = 0

    def begin(self) -> None:
        self.now += 1

    def end(self) -> None:
        self.now += 1

    def clean(self, began: int, ended: int) -> bool:
        """A fetch from `began` to `ended` saw no seek, and none has happened since."""
        return began == ended == self.now and began % 2 == 0


@dataclass(frozen=True, slots=True)
class _Batch:
    began: int  # the seek clock when the fetch began
    ended: int  # and when it returned
    records: list[Decoded]


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
        self._seeks = SeekClock()
        self._reseek = False  # a batch was not applied: seek to the stored offsets first
        self._dead_letters: RecordProducer | None = None
        self._dead_letter_topic = topic_name("dead_letters", settings)

    async def run(self) -> None:
        """Migrate the schema, then consume and apply until cancelled."""
        await prime(self.settings)
        self._conn = await connect(database_url(self.settings), self.schema)
        await migrate(self._conn, self.schema)
        self._consumer = self._new_consumer()
        self._consumer.subscribe(self.topics, listener=_SeekToStored(self))
        self._dead_letters = self._new_dead_letters()
        await self._dead_letters.start()
        await self._consumer.start()
        log.info("projector_started", schema=self.schema, group_id=self.group_id,
                 topics=self.topics)
        try:
            with fewer_collections():
                await self._consume()
        finally:
            await self._consumer.stop()
            await self._dead_letters.stop()
            await self._conn.close()
            log.info("projector_stopped", schema=self.schema, applied=self.applied)

    def _new_consumer(self) -> AIOKafkaConsumer:
        workers = self.settings.workers
        return clients.consumer(
            self.settings.kafka,
            client_id=f"{self.settings.kafka.client_id}-projector",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            session_timeout_ms=int(workers.session_timeout_s * 1000),
            heartbeat_interval_ms=int(workers.heartbeat_interval_s * 1000),
        )

    def _new_dead_letters(self) -> RecordProducer:
        return RecordProducer(self.settings)

    async def _consume(self) -> None:
        """Fetch and decode the next batch while the database applies this one."""
        assert self._consumer is not None
        batch = await self._fetch()
        while True:
            if self._reseek or not self._seeks.clean(batch.began, batch.ended):
                # A seek touched this batch's fetch (or a batch was dropped): read again from
                # the stored offsets, with nothing fetched meanwhile, so this settles.
                async with self._applying:
                    self._reseek = False
                    try:
                        await self._seek_to_stored(self._consumer.assignment())
                    except _CONNECTION_ERRORS as err:
                        log.warning("projector_database_lost", error=str(err))
                        await self._reconnect()
                        self._reseek = True
                    except Exception as err:  # a rebalance took a partition under the seek
                        log.warning("projector_reseek_failed", error=repr(err), retry_in_s=0.2)
                        self._reseek = True
                        await asyncio.sleep(0.2)
                    else:
                        self.ready.set()
                batch = await self._fetch()
                continue
            _, batch = await asyncio.gather(self._apply(batch), self._fetch())

    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this projector holds now (none before it joined)."""
        if self._consumer is None:
            return set()
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def _fetch(self) -> _Batch:
        assert self._consumer is not None
        began = self._seeks.now
        records = await fetch_batch(self._consumer, self.poll_ms, self.max_batch)
        ended = self._seeks.now
        return _Batch(began, ended, await decode_between(records, self._decode))

    async def _apply(self, batch: _Batch) -> None:
        if not batch.records:
            return
        assert self._consumer is not None and self._conn is not None
        async with self._applying:
            if not self._seeks.clean(batch.began, batch.ended):
                # A seek (an assignment, a reconnect) came since it was fetched: its records
                # are read again once the loop has sought to the stored offsets.
                self._reseek = True
                return
            started = time.perf_counter()
            try:
                result = await apply_isolating(self._conn, batch.records, self.schema,
                                               on_failed=self._dead_letter)
            except _CONNECTION_ERRORS as err:
                log.warning("projector_database_lost", error=str(err))
                await self._reconnect()
                await self._seek_to_stored(self._consumer.assignment())
                return
            except DeadLetterFailed as err:
                log.warning("projector_dead_letter_failed", error=str(err), retry_in_s=1.0)
                await asyncio.sleep(1.0)
                await self._seek_to_stored(self._consumer.assignment())
                return
            self.applied += result.applied
            self.consumed += len(batch.records)
            log.debug("batch_projected", records=len(batch.records), applied=result.applied,
                      failed=result.failed,
                      ms=round((time.perf_counter() - started) * 1000, 1))

    async def _dead_letter(self, rec: Consumed, err: BaseException) -> None:
        """Send a record the read models cannot hold to the dead-letter topic, with why."""
        if rec.topic == self._dead_letter_topic:
            # A dead letter that cannot be projected is not dead-lettered again (a loop): it
            # stays in projection_errors, to be found there.
            log.error("dead_letter_not_projected", partition=rec.partition, offset=rec.offset,
                      error_type=type(err).__name__)
            return
        assert self._dead_letters is not None
        event = DeadLettered(
            # One id per source record: a batch tried again dead-letters it once.
            event_id=str(uuid.uuid5(_DEAD_LETTER_IDS, f"{rec.topic}/{rec.partition}/{rec.offset}")),
            workflow_id="", occurred_at=datetime.now(timezone.utc), source_topic=rec.topic,
            source_partition=rec.partition, source_offset=rec.offset,
            error_type=type(err).__name__, reason=f"not projected: {err}"[:2000], key=rec.key,
            payload=rec.value or b"", headers=headers_json(rec.headers),
        )
        try:
            await self._dead_letters.send(event)
        except Exception as failed:  # Kafka refused or is away: store nothing, try again
            raise DeadLetterFailed(f"dead-lettering {rec.topic}:{rec.partition}:{rec.offset} "
                                   f"failed ({failed})") from failed
        DEAD_LETTERS.labels(rec.topic, event.error_type).inc()
        log.error("dead_lettered", source_topic=rec.topic, partition=rec.partition,
                  offset=rec.offset, error_type=event.error_type, reason=event.reason,
                  event_id=event.event_id)

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

    async def let_batch_finish(self) -> None:
        """Return once the batch in flight has committed (before partitions go elsewhere)."""
        async with self._applying:
            pass

    def reseek(self) -> None:
        """Have the loop seek every held partition to its stored offset before applying more
        (a seek that failed, or one that raced a fetch)."""
        self._reseek = True

    async def seek_assigned(self, assigned: list[TopicPartition]) -> None:
        """Position newly assigned partitions at their stored offsets; ready from then on."""
        async with self._applying:
            await self._seek_to_stored(assigned)
        self.ready.set()

    async def _seek_to_stored(self, partitions: set[TopicPartition] | list[TopicPartition]) -> None:
        """Position each partition at its stored next offset (the log's start if none)."""
        assert self._consumer is not None and self._conn is not None
        partitions = list(partitions)
        fresh: list[TopicPartition] = []
        self._seeks.begin()
        try:
            stored = await checkpoint.stored(self._conn, {tp.topic for tp in partitions})
            for tp in partitions:
                offset = stored.get((tp.topic, tp.partition))
                if offset is None:
                    fresh.append(tp)
                else:
                    self._consumer.seek(tp, offset)
            if fresh:
                await self._consumer.seek_to_beginning(*fresh)
        finally:
            self._seeks.end()
        log.info("projector_positioned", partitions=len(partitions), from_start=len(fresh))


# aiokafka ships no types: its listener base class is Any to mypy.
class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, seek to the offsets stored with the read models."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.projector.let_batch_finish()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            await self.projector.seek_assigned(assigned)
        except Exception:  # aiokafka only logs a listener's error: seek again from the loop
            log.exception("projector_positioning_failed", partitions=len(assigned))
            self.projector.reseek()
