"""How far the archive reaches on each archived partition, beside what the log still holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka.errors import KafkaError

from bend.archive.archiver import archived_topics
from bend.archive.history import Gap, gap_of
from bend.archive.store import ArchiveStore
from bend.kafka import clients
from bend.settings import Settings
from bend.kafka.metadata import partitions_of

__all__ = ["PartitionArchive", "archive_status", "partition_archives"]


@dataclass(frozen=True, slots=True)
class PartitionArchive:
    """One archived partition: the archive's next offset, the log's first and next offsets."""

    topic: str
    partition: int
    archived_to: int | None  # None: nothing archived yet
    segments: int
    log_begins: int
    log_ends: int

    @property
    def behind(self) -> int:
        """Records in the log not archived yet."""
        return max(self.log_ends - max(self.archived_to or 0, self.log_begins), 0)

    @property
    def gap(self) -> Gap | None:
        """Records neither holds (deleted by retention before they were archived)."""
        return gap_of(self.topic, self.partition, self.archived_to, self.log_begins)


def partition_archives(store: ArchiveStore,
                       bounds: Mapping[tuple[str, int], tuple[int, int]]) -> list[PartitionArchive]:
    """Each (topic, partition) of `bounds` (the log's first and next offsets) beside how far
    `store` reaches on it (reads the segment listing: call it off the event loop)."""
    return [PartitionArchive(topic, partition, store.next_offset(topic, partition),
                             len(store.segments(topic, partition)), begins, ends)
            for (topic, partition), (begins, ends) in bounds.items()]


async def archive_status(settings: Settings) -> list[PartitionArchive]:
    """Every partition of the archived topics, as the archive and the log stand now."""
    store = ArchiveStore(settings.archive_dir())
    consumer = clients.consumer(settings.kafka, group_id=None, enable_auto_commit=False)
    try:
        await consumer.start()
        tps = await partitions_of(consumer, archived_topics(settings))
        begins = await consumer.beginning_offsets(tps) if tps else {}
        ends = await consumer.end_offsets(tps) if tps else {}
    except KafkaError as err:
        raise await clients.unavailable(settings.kafka, f"cannot read offsets ({err})") from err
    finally:
        await consumer.stop()
    return partition_archives(store, {(tp.topic, tp.partition): (begins[tp], ends[tp])
                                      for tp in tps})
