"""Snapshots of a partition's open runs, so a new owner folds only the run log's tail.

Each owned partition of `run-events` has a `PartitionMirror`: the raw (still encoded) events of
its open runs, fed from the log itself, never from the orchestrator's memory, so a snapshot
holds only events Kafka has acknowledged. Every `snapshot_interval_s` the `Snapshotter` writes,
to the same partition of the compacted `run-states` topic, a `RunSnapshot` of each run changed
since the last round, a tombstone for each finished run that had one, one `FinishedRuns` of the
runs that finished since the last round (kept `FINISHED_RUNS_KEPT_MS`, then tombstoned), then a
`SnapshotRound` naming the run-log offset everything before which is covered. A new owner
(`load_snapshot`) folds the snapshots of the open runs and remembers the finished ones, then
folds the log from that offset (streams/runcache.py). What it reads grows with open runs and
rounds, not with runs finished.

Records younger than `snapshot_lag_s` stay out of snapshots: a command redelivered after a
crash is recognised only if its decision is folded from the log (`PartitionRuns.decided`), and
a decision's outbox leaves milliseconds after its events, so a decision that old has sent it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from bend.contracts.errors import ContractError
from bend.contracts.snapshots import (
    FinishedRuns, RunSnapshot, SnapshotRound, decode_snapshot, encode_snapshot, ends_run,
    finished_key, round_key,
)
from bend.contracts.topics import FINISHED_RUNS_KEPT_MS
from bend.kafka import clients
from bend.kafka.fromstart import seek_to_start
from bend.settings import KafkaSettings
from streams.background import spawn

__all__ = ["LoadedSnapshot", "PartitionMirror", "Round", "Snapshotter", "load_snapshot"]

log = structlog.get_logger(__name__)

# Run ids that ended lately, per partition: a zombie writer's late duplicate of one of their
# events must not open the run again in the mirror.
_ENDED_REMEMBERED = 2_000
_RECORD_OVERHEAD = 64  # bytes a snapshot adds to its events (ids, lengths, header)
Record = tuple[bytes, bytes | None]  # key, value (None: a tombstone)


@dataclass(slots=True)
class LoadedSnapshot:
    """A partition's snapshot as a new owner reads it; `round` None means there is none yet."""

    partition: int
    round: SnapshotRound | None = None
    runs: dict[str, RunSnapshot] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)  # finished run ids, oldest first
    batches: list[tuple[bytes, int]] = field(default_factory=list)  # FinishedRuns keys, times
    records: int = 0  # records read (superseded ones included)

    @property
    def covers_offset(self) -> int:
        """The run-log offset to fold from (0 without a snapshot)."""
        return self.round.covers_offset if self.round is not None else 0

    @classmethod
    def of_records(cls, partition: int, records: Iterable[Record]) -> LoadedSnapshot:
        """The snapshot a partition's records (key, value) give, read in offset order."""
        latest: dict[bytes, bytes | None] = {}
        loaded = cls(partition)
        for key, value in records:
            latest.pop(key, None)  # keep the offset order of each key's last record
            latest[key] = value
            loaded.records += 1
        batches: list[FinishedRuns] = []
        for key, value in latest.items():
            if value is None:
                continue  # a finished run's snapshot, or an expired FinishedRuns, deleted
            try:
                record = decode_snapshot(value)
            except ContractError as exc:
                log.error("undecodable_snapshot", partition=partition, key=key, error=str(exc))
                continue
            if isinstance(record, SnapshotRound):
                loaded.round = record
            elif isinstance(record, FinishedRuns):
                batches.append(record)
                loaded.batches.append((key, record.taken_at_ms))
            else:
                loaded.runs[record.run_id] = record
        for batch in batches:
            loaded.finished += batch.run_ids
        return loaded


@dataclass(frozen=True, slots=True)
class Round:
    """What one round writes (`records`, the marker last) and what it changes once durable."""

    records: list[Record]
    saved: tuple[str, ...]  # runs whose snapshot it writes
    deleted: tuple[str, ...]  # finished runs whose snapshot it deletes
    ended: int  # how many of the mirror's ended runs its FinishedRuns holds
    batch: tuple[bytes, int] | None  # the FinishedRuns it writes: key, time
    expired: int  # how many of the oldest FinishedRuns it deletes
    covers: int


class PartitionMirror:
    """One partition's open runs as logged bytes, and what the next round must write.

    Pure bookkeeping (no I/O): `feed` takes the run log's records in offset order, `settle`
    admits those older than the lag, `take_round` gives a round's records, `written` marks
    them durable.
    """

    def __init__(self, partition: int, position: int = 0, lag_ms: int = 2000,
                 max_bytes: int = 4 * 1024 * 1024,
                 keep_finished_ms: int = FINISHED_RUNS_KEPT_MS) -> None:
        self.partition = partition
        self.position = position  # the next run-log offset to feed
        self.covered = position  # covers_offset of the last round written
        self.lag_ms = lag_ms
        self.max_bytes = max_bytes
        self.keep_finished_ms = keep_finished_ms
        self.open: dict[str, list[bytes]] = {}
        self._sizes: dict[str, int] = {}
        # Runs changed since their last written snapshot -> the offset of the first change.
        self._unsaved: dict[str, int] = {}
        self._saved: set[str] = set()  # open runs with a snapshot in the topic
        self._ended: list[str] = []  # finished since the last round
        self._deletions: list[str] = []  # finished runs whose snapshot is to be deleted
        self._ended_recent: OrderedDict[str, None] = OrderedDict()
        self._batches: deque[tuple[bytes, int]] = deque()  # FinishedRuns written: key, time
        self._pending: deque[tuple[int, int, str, bytes]] = deque()
        self._oversize_logged: set[str] = set()

    @classmethod
    def of(cls, loaded: LoadedSnapshot, lag_ms: int = 2000, max_bytes: int = 4 * 1024 * 1024,
           keep_finished_ms: int = FINISHED_RUNS_KEPT_MS) -> PartitionMirror:
        """A mirror that starts where a loaded snapshot ends (its runs already written)."""
        mirror = cls(loaded.partition, loaded.covers_offset, lag_ms, max_bytes, keep_finished_ms)
        for run_id, snap in loaded.runs.items():
            mirror.open[run_id] = list(snap.events)
            mirror._sizes[run_id] = sum(map(len, snap.events))
            mirror._saved.add(run_id)
        for run_id in loaded.finished[-_ENDED_REMEMBERED:]:
            mirror._ended_recent[run_id] = None
        mirror._batches.extend(sorted(loaded.batches, key=lambda b: b[1]))
        return mirror

    def feed(self, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None) -> None:
        """Take the run log's record at `offset` (records before `position` are ignored)."""
        if offset < self.position:
            return
        self.position = offset + 1
        if key and value:
            self._pending.append((offset, timestamp_ms, key.decode(), value))

    def settle(self, now_ms: int) -> None:
        """Admit the fed records older than the lag, in offset order."""
        horizon = now_ms - self.lag_ms
        while self._pending and self._pending[0][1] <= horizon:
            offset, _, run_id, value = self._pending.popleft()
            self._admit(offset, run_id, value)

    def _admit(self, offset: int, run_id: str, value: bytes) -> None:
        if run_id in self._ended_recent:
            return  # a late duplicate of a finished run's event
        if ends_run(value):
            self.open.pop(run_id, None)
            self._sizes.pop(run_id, None)
            self._unsaved.pop(run_id, None)
            if run_id in self._saved:
                self._saved.discard(run_id)
                self._deletions.append(run_id)
            self._ended.append(run_id)
            self._ended_recent[run_id] = None
            if len(self._ended_recent) > _ENDED_REMEMBERED:
                self._ended_recent.popitem(last=False)
            return
        self.open.setdefault(run_id, []).append(value)
        self._sizes[run_id] = self._sizes.get(run_id, 0) + len(value)
        self._unsaved.setdefault(run_id, offset)

    def covers(self) -> int:
        """The offset a round written now would cover: nothing unsettled or unwritten before it."""
        end = self._pending[0][0] if self._pending else self.position
        held = [o for r, o in self._unsaved.items() if self._too_big(r)]
        return min([end, *held])

    def _too_big(self, run_id: str) -> bool:
        big = self._sizes.get(run_id, 0) + _RECORD_OVERHEAD * (1 + len(self.open[run_id])) \
            > self.max_bytes
        if big and run_id not in self._oversize_logged:
            self._oversize_logged.add(run_id)
            log.warning("run_too_big_to_snapshot", run_id=run_id, partition=self.partition,
                        bytes=self._sizes.get(run_id, 0))
        return big

    def take_round(self, now_ms: int, writer: str = "") -> Round | None:
        """The round to write now, or None when it would change nothing.

        Records: a snapshot of each changed run, a tombstone for each finished run that had
        one, the FinishedRuns of the runs ended since the last round, tombstones for the
        FinishedRuns older than `keep_finished_ms`, and the marker last.
        """
        covers = self.covers()
        saved = tuple(r for r in self._unsaved if not self._too_big(r))
        expired = 0
        while expired < len(self._batches) \
                and self._batches[expired][1] < now_ms - self.keep_finished_ms:
            expired += 1
        if not saved and not self._ended and not self._deletions and not expired \
                and covers == self.covered:
            return None
        records: list[Record] = [
            (r.encode(), encode_snapshot(RunSnapshot(r, self.partition, covers,
                                                     tuple(self.open[r]), now_ms)))
            for r in saved]
        records += [(r.encode(), None) for r in self._deletions]
        batch = None
        if self._ended:
            batch = (finished_key(self.partition, now_ms, covers), now_ms)
            records.append((batch[0], encode_snapshot(
                FinishedRuns(self.partition, tuple(self._ended), now_ms))))
        records += [(self._batches[i][0], None) for i in range(expired)]
        records.append((round_key(self.partition), encode_snapshot(
            SnapshotRound(self.partition, covers, len(self.open), now_ms, writer))))
        return Round(records, saved, tuple(self._deletions), len(self._ended), batch, expired,
                     covers)

    def written(self, done: Round) -> None:
        """A round from `take_round` (nothing admitted since) is durable."""
        for run_id in done.saved:
            self._unsaved.pop(run_id, None)
            self._saved.add(run_id)
        self._deletions = self._deletions[len(done.deleted):]
        self._ended = self._ended[done.ended:]
        for _ in range(done.expired):
            self._batches.popleft()
        if done.batch is not None:
            self._batches.append(done.batch)
        self.covered = done.covers


async def load_snapshot(kafka: KafkaSettings, topic: str, partition: int) -> LoadedSnapshot:
    """Read a partition of the run-states topic whole: the last record of each key wins."""
    tp = TopicPartition(topic, partition)
    consumer = clients.consumer(kafka, enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest",
                                isolation_level="read_committed",
                                max_partition_fetch_bytes=2 * 1024 * 1024)
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}  # superseded values are let go as they are read
    count = 0
    try:
        _, ends = await seek_to_start(consumer, [tp])
        end = ends[tp]
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=20_000)
            for record in batch.get(tp, []):
                if record.offset < end and record.key is not None:
                    latest.pop(record.key, None)
                    latest[record.key] = record.value
                    count += 1
    finally:
        await consumer.stop()
    loaded = LoadedSnapshot.of_records(partition, latest.items())
    loaded.records = count
    return loaded


class Snapshotter:
    """Follows the owned partitions of the run log and writes their snapshot rounds.

    Each partition's rounds are Kafka transactions of a producer whose transactional id is the
    partition's: a new owner claims it before it reads the snapshot, which fences the previous
    owner's producer (a paused, fenced-out worker writes no stale round after it) and aborts a
    round it left half written; readers read committed rounds only.
    """

    def __init__(self, kafka: KafkaSettings, run_events_topic: str, run_states_topic: str,
                 interval_s: float = 1.0, lag_s: float = 2.0,
                 max_bytes: int = 4 * 1024 * 1024, writer: str = "") -> None:
        self._kafka = kafka
        self._source = run_events_topic
        self.topic = run_states_topic
        self.interval_s = interval_s
        self.lag_ms = int(lag_s * 1000)
        self.max_bytes = max_bytes
        self.writer = writer
        self.mirrors: dict[int, PartitionMirror] = {}
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._reassign = asyncio.Event()
        self.rounds = 0

    @property
    def enabled(self) -> bool:
        """Snapshots are written and read (an interval of 0 turns them off: full folds)."""
        return self.interval_s > 0

    def mirror(self, loaded: LoadedSnapshot) -> PartitionMirror:
        """A new mirror for a partition being rebuilt from `loaded` (fed by the rebuild)."""
        return PartitionMirror.of(loaded, self.lag_ms, self.max_bytes)

    async def claim(self, partition: int) -> None:
        """Become the partition's only snapshot writer (fencing the previous one)."""
        old = self._producers.pop(partition, None)
        if old is not None:
            await old.stop()
        producer = clients.producer(self._kafka, acks="all",
                                    enable_idempotence=True, linger_ms=5,
                                    max_request_size=16 * 1024 * 1024,
                                    transactional_id=f"{self.topic}-{partition}")
        await producer.start()
        try:
            await producer.begin_transaction()  # waits for the producer id: fenced by now
            await producer.abort_transaction()
        except BaseException:
            await producer.stop()
            raise
        self._producers[partition] = producer

    def follow(self, mirror: PartitionMirror) -> None:
        """Keep the partition's snapshot from the mirror's position on (its rebuild is done)."""
        self.mirrors[mirror.partition] = mirror
        self._reassign.set()

    def unfollow(self, partitions: set[int]) -> None:
        """Stop snapshotting partitions another worker owns now."""
        for p in partitions:
            self.mirrors.pop(p, None)
            producer = self._producers.pop(p, None)
            if producer is not None:
                spawn(producer.stop(), what=f"stop the snapshot producer of partition {p}")
        self._reassign.set()

    async def run(self) -> None:
        """Follow and snapshot until cancelled (an app task)."""
        if not self.enabled:
            return
        consumer = clients.consumer(self._kafka, enable_auto_commit=False,
                                    group_id=None, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        try:
            await self._loop(consumer)
        finally:
            await consumer.stop()
            await self.close()

    async def close(self) -> None:
        """Stop every partition's writer."""
        producers, self._producers = list(self._producers.values()), {}
        for producer in producers:
            await producer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        next_round = time.monotonic() + self.interval_s
        followed: dict[int, PartitionMirror] = {}
        while True:
            if self._reassign.is_set() or followed != self.mirrors:
                self._reassign.clear()
                followed = dict(self.mirrors)
                tps = [TopicPartition(self._source, p) for p in followed]
                consumer.assign(tps)
                for tp in tps:
                    consumer.seek(tp, followed[tp.partition].position)
            if not followed:
                await asyncio.sleep(0.2)
                continue
            try:
                batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            except Exception as exc:
                log.error("snapshot_follow_failed", error=repr(exc))
                self._reassign.set()  # seek again to where the mirrors are
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                mirror = self.mirrors.get(tp.partition)
                if mirror is None or mirror is not followed.get(tp.partition):
                    continue
                for record in records:
                    mirror.feed(record.offset, record.timestamp, record.key, record.value)
            if time.monotonic() >= next_round:
                await self.write_rounds()
                next_round = time.monotonic() + self.interval_s

    async def write_rounds(self, now_ms: int | None = None,
                           partitions: set[int] | None = None) -> None:
        """Write a round for each followed partition (of `partitions`) with something new."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        for p, mirror in list(self.mirrors.items()):
            producer = self._producers.get(p)
            if producer is None or (partitions is not None and p not in partitions):
                continue
            mirror.settle(now_ms)
            done = mirror.take_round(now_ms, self.writer)
            if done is None:
                continue
            try:
                async with producer.transaction():  # a round is written whole or not at all
                    futures = [await producer.send(self.topic, value, key=key, partition=p)
                               for key, value in done.records]
                await asyncio.gather(*futures)
            except ProducerFenced:  # a new owner claimed the partition: stop writing it
                log.warning("snapshot_writer_fenced", partition=p)
                if self._producers.get(p) is producer:
                    self.unfollow({p})
                continue
            except Exception as exc:
                log.error("snapshot_round_failed", partition=p, records=len(done.records),
                          error=repr(exc))
                continue
            if self.mirrors.get(p) is mirror:
                mirror.written(done)
                self.rounds += 1
                log.debug("snapshot_round_written", partition=p, records=len(done.records),
                          covers_offset=mirror.covered, open_runs=len(mirror.open))
