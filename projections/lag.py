"""Projection lag: how far the read models' stored offsets trail the end of each topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bend.kafka.offsets import OffsetReader
from projections import checkpoint

__all__ = ["PartitionLag", "ProjectionLag", "projection_lag"]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition: the log's end, the next offset the read models will apply, the records
    between."""

    topic: str
    partition: int
    end_offset: int
    next_offset: int
    lag: int


@dataclass(frozen=True, slots=True)
class ProjectionLag:
    """Every projected partition's lag, and their sum."""

    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        """Records in the log not yet applied, over all partitions."""
        return sum(p.lag for p in self.partitions)


async def projection_lag(conn: asyncpg.Connection | asyncpg.Pool, offsets: OffsetReader,
                         topics: Sequence[str]) -> ProjectionLag:
    """Compare the offsets stored with the read models to the topics' end offsets."""
    bounds = await offsets.bounds(topics)
    stored = await checkpoint.stored(conn, topics)
    out = []
    for (topic, partition), (start, end) in sorted(bounds.items()):
        # Never applied: everything still in the log is lag (the log may start past 0).
        applied_up_to = max(stored.get((topic, partition), start), start)
        out.append(PartitionLag(topic, partition, end, applied_up_to, max(end - applied_up_to, 0)))
    return ProjectionLag(tuple(out))
