"""The archiver: copies every record of the archived topics into segment files, continuously.

A consumer group spreads the partitions over archivers. Each partition resumes after its last
segment (the segments are the checkpoint; no Kafka offsets are committed), buffers what it
reads, and writes a segment once it holds `BEND_ARCHIVE__SEGMENT_RECORDS` records or its
oldest has waited `BEND_ARCHIVE__FLUSH_AFTER_S`, so a closed run's records are on disk within
that time, long before any retention deletes them. A record past the next expected offset
means the log lost records before they were archived: logged as `archive_gap`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from bend.archive.format import ArchivedRecord, LogRecord
from bend.archive.store import ArchiveStore
from bend.contracts.codec import codec_for
from bend.contracts.topics import topic_name
from bend.kafka import clients
from bend.core.errors import BendError
from bend.settings import Settings

__all__ = ["Archiver", "archived_topics"]

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def archived_topics(settings: Settings) -> list[str]:
    """The full names of the archived topics."""
    return [topic_name(kind, settings) for kind in settings.archive.topics]


class Archiver:
    """Archives the settings' topics into `store`; `await run()` until cancelled."""

    def __init__(self, settings: Settings, *, store: ArchiveStore | None = None,
                 group_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.store = store or ArchiveStore(settings.archive_dir())
        self.topics = archived_topics(settings)
        self.group_id = group_id or f"{settings.kafka.topic_prefix}-archiver"
        self.segment_records = settings.archive.segment_records
        self.flush_after_s = settings.archive.flush_after_s
        self.archived = 0  # records written to segments since start
        self.gaps = 0
        self.ready = asyncio.Event()  # set once partitions are assigned and positioned
        self._clock = clock
        self._decode = codec_for(settings).decode
        self._buffers: dict[TopicPartition, list[ArchivedRecord]] = {}
        self._oldest: dict[TopicPartition, float] = {}  # when a buffer's first record came
        self._expected: dict[TopicPartition, int] = {}  # the next offset each partition needs
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Consume and archive until cancelled; what is buffered is written on the way out."""
        self._consumer = clients.consumer(
            self.settings.kafka,
            client_id=f"{self.settings.kafka.client_id}-archiver", group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=5000,
            session_timeout_ms=int(self.settings.workers.session_timeout_s * 1000),
            heartbeat_interval_ms=int(self.settings.workers.heartbeat_interval_s * 1000))
        self._consumer.subscribe(self.topics, listener=_ResumeAfterSegments(self))
        await self._consumer.start()
        log.info("archiver_started", topics=self.topics, root=str(self.store.root))
        try:
            while True:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batch.items():
                    self._take(tp, records)
                await self._flush(due_only=True)
        finally:
            try:
                await self._flush(due_only=False)
            finally:
                await self._consumer.stop()
                log.info("archiver_stopped", archived=self.archived)

    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this archiver holds now."""
        if self._consumer is None:
            return set()
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def _take(self, tp: TopicPartition, records: list[LogRecord]) -> None:
        expected = self._expected.get(tp)
        if expected is None:
            return  # not positioned (revoked meanwhile): its next owner reads it
        buffer = self._buffers.setdefault(tp, [])
        for record in records:
            offset: int = record.offset
            if offset < expected:
                continue  # archived already (read again after a seek)
            if offset > expected:
                self.gaps += 1
                log.error("archive_gap", topic=tp.topic, partition=tp.partition,
                          missing_from=expected, missing_to=offset - 1,
                          hint="the log deleted these records before they were archived: "
                               "raise the topic's retention or keep the archiver running")
            if not buffer:
                self._oldest[tp] = self._clock()
            buffer.append(self._archived(tp, record))
            expected = offset + 1
        self._expected[tp] = expected

    def _archived(self, tp: TopicPartition, record: LogRecord) -> ArchivedRecord:
        value: bytes = record.value or b""
        key: bytes | None = record.key
        timestamp: int | None = record.timestamp
        event_type, run_id, seq, occurred_at = "", "", 0, _EPOCH
        try:
            decoded = self._decode(value)
            event_type = type(decoded).__name__
            run_id = getattr(decoded, "run_id", None) or ""
            seq = getattr(decoded, "seq", 0) or 0
            occurred_at = decoded.occurred_at
        except BendError:  # kept as the log held it; its readers dead-letter it as before
            run_id = key.decode(errors="replace") if key else ""
        return ArchivedRecord(tp.topic, tp.partition, record.offset, key, value,
                              timestamp, event_type, run_id, seq, occurred_at)

    async def _flush(self, *, due_only: bool,
                     partitions: list[TopicPartition] | None = None) -> None:
        now = self._clock()
        for tp in list(partitions if partitions is not None else self._buffers):
            buffer = self._buffers.get(tp)
            if not buffer:
                continue
            while len(buffer) >= self.segment_records:
                await self._write(buffer[:self.segment_records])
                del buffer[:self.segment_records]
                self._oldest[tp] = now
            if buffer and (not due_only or now - self._oldest[tp] >= self.flush_after_s):
                await self._write(buffer)
                buffer.clear()

    async def _write(self, records: list[ArchivedRecord]) -> None:
        segment = await asyncio.to_thread(self.store.write, list(records))
        self.archived += len(records)
        log.info("archive_segment_written", path=str(segment.path), first=segment.first,
                 last=segment.last, records=len(records))

    async def give_up(self, revoked: list[TopicPartition]) -> None:
        """Before partitions go to another archiver: write what is buffered of them."""
        await self._flush(due_only=False, partitions=revoked)
        for tp in revoked:
            self._expected.pop(tp, None)

    async def take(self, assigned: list[TopicPartition]) -> None:
        """Seek each assigned partition to the offset after its last segment (or its start)."""
        await self._position(assigned)
        self.ready.set()

    async def _position(self, assigned: list[TopicPartition]) -> None:
        assert self._consumer is not None
        if not assigned:
            return
        begins = await self._consumer.beginning_offsets(assigned)
        for tp in assigned:
            archived = self.store.next_offset(tp.topic, tp.partition)
            start = begins[tp] if archived is None else max(archived, begins[tp])
            if archived is not None and begins[tp] > archived:
                self.gaps += 1
                log.error("archive_gap", topic=tp.topic, partition=tp.partition,
                          missing_from=archived, missing_to=begins[tp] - 1,
                          hint="the log deleted these records before they were archived")
            self._expected[tp] = start
            self._consumer.seek(tp, start)


# aiokafka ships no types: its listener base class is Any to mypy.
class _ResumeAfterSegments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Write what is buffered before giving partitions up; resume after the segments."""

    def __init__(self, archiver: Archiver) -> None:
        self.archiver = archiver

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.archiver.give_up(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.archiver.take(list(assigned))
