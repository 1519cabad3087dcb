"""A topic's whole history: its archived records, then the log from where the archive ends.

Readers of a whole run log (replay, fork, explain, rebuilds) take records from here, so
retention deleting the log's oldest records changes nothing for them while the archiver keeps
up. Records neither the archive nor the log holds are a `Gap`, logged and reported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import structlog

from bend.archive.format import LogRecord
from bend.archive.store import ArchiveStore
from bend.kafka.fromstart import read_to_end
from bend.settings import Settings

__all__ = ["Gap", "gap_of", "read_history"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Gap:
    """Offsets of a partition that neither the archive nor the log holds any more."""

    topic: str
    partition: int
    first: int  # the first missing offset
    last: int  # the last one

    def __str__(self) -> str:
        return (f"{self.topic}:{self.partition} offsets {self.first}-{self.last} were deleted "
                "by retention before they were archived")


def gap_of(topic: str, partition: int, archived_to: int | None, log_begins: int) -> Gap | None:
    """The gap between a partition's archive (next offset `archived_to`, None if nothing) and
    the first offset its log still holds."""
    start = archived_to or 0
    return Gap(topic, partition, start, log_begins - 1) if log_begins > start else None


async def read_history(settings: Settings, topic: str, partitions: Iterable[int] | None = None,
                       *, fetch_bytes: int = 1024 * 1024,
                       gaps: list[Gap] | None = None) -> AsyncIterator[tuple[int, LogRecord]]:
    """(partition, record) of `topic`'s archived records, then of its log from where the
    archive ends, up to the log's end now. Records carry `offset`, `key`, `value`. Gaps found
    are logged and, if `gaps` is given, appended to it."""
    store = ArchiveStore(settings.archive_dir())
    wanted = None if partitions is None else sorted(set(partitions))
    archived = store.partitions(topic)
    covered: dict[int, int] = {}
    for partition in archived if wanted is None else [p for p in wanted if p in archived]:
        for record in store.read(topic, partition):
            yield partition, record
            covered[partition] = record.offset + 1
    begins: dict[int, int] = {}
    async for item in read_to_end(settings.kafka, topic, wanted,
                                  fetch_bytes=fetch_bytes, start_at=covered,
                                  begins_seen=begins):
        yield item
    for partition, first in sorted(begins.items()):
        gap = gap_of(topic, partition, covered.get(partition), first)
        if gap is not None:
            log.error("history_gap", topic=topic, partition=partition, first=gap.first,
                      last=gap.last)
            if gaps is not None:
                gaps.append(gap)
