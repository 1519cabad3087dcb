"""Projection lag: how far the read models' stored offsets trail the end of each topic, in
records and in seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg

from bend.kafka.offsets import OffsetReader
from bend.settings import Settings
from projections import checkpoint

__all__ = [
    "SHOWN_AFTER_S", "PartitionLag", "ProjectionLag", "describe", "projection_lag", "read_lag",
    "worth_showing",
]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition: the log's end, the next offset the read models will apply, the records
    between."""

    topic: str
    partition: int
    end_offset: int
    next_offset: int
    lag: int
    last_record_at: datetime | None = None  # Kafka time of the last record applied

    def seconds(self, now: datetime) -> float | None:
        """How long records have waited: 0 when none waits; else the time since the last record
        applied was written (at least the oldest waiting record's age, and that age while records
        keep coming); None if nothing was applied yet."""
        if self.lag == 0:
            return 0.0
        if self.last_record_at is None:
            return None
        return max((now - self.last_record_at).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class ProjectionLag:
    """Every projected partition's lag, and their sum."""

    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        """Records in the log not yet applied, over all partitions."""
        return sum(p.lag for p in self.partitions)

    def seconds(self, now: datetime | None = None) -> float | None:
        """The longest any partition's records have waited (None: a lagging partition has
        applied nothing yet, so its wait is unknown)."""
        now = now or datetime.now(timezone.utc)
        waits = [p.seconds(now) for p in self.partitions]
        return None if None in waits else max(waits, default=0.0)  # type: ignore[type-var]


async def projection_lag(conn: asyncpg.Connection | asyncpg.Pool, offsets: OffsetReader,
                         topics: Sequence[str]) -> ProjectionLag:
    """Compare the offsets stored with the read models to the topics' end offsets."""
    bounds = await offsets.bounds(topics)
    stored = await checkpoint.stored(conn, topics)
    times = await checkpoint.record_times(conn, topics)
    out = []
    for (topic, partition), (start, end) in sorted(bounds.items()):
        # Never applied: everything still in the log is lag (the log may start past 0).
        applied_up_to = max(stored.get((topic, partition), start), start)
        out.append(PartitionLag(topic, partition, end, applied_up_to, max(end - applied_up_to, 0),
                                times.get((topic, partition))))
    return ProjectionLag(tuple(out))


# Lag under this is the projector keeping up; the UI says nothing of it.
SHOWN_AFTER_S = 5.0


def describe(lag: ProjectionLag, now: datetime | None = None) -> str:
    """`caught up`, or how far behind: `behind by 1,204 records (8 s)`."""
    if lag.total == 0:
        return "caught up"
    wait = lag.seconds(now)
    waited = "" if wait is None else f" ({wait:,.0f} s)"
    return f"behind by {lag.total:,} record{'s' if lag.total != 1 else ''}{waited}"


def worth_showing(lag: ProjectionLag, now: datetime | None = None) -> bool:
    """Whether readers should be told the read models are behind: records have waited more
    than `SHOWN_AFTER_S` (or for an unknown time)."""
    if lag.total == 0:
        return False
    wait = lag.seconds(now)
    return wait is None or wait > SHOWN_AFTER_S


async def read_lag(settings: Settings) -> ProjectionLag:
    """The live read models' lag, on connections of its own (for `bend dev status`)."""
    from projections.db import connect, database_url
    from projections.project import projected_topics

    conn = await connect(database_url(settings), settings.database.schema_name)
    try:
        async with OffsetReader(settings) as offsets:
            return await projection_lag(conn, offsets, projected_topics(settings))
    finally:
        await conn.close()
