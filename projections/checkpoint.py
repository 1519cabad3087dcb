"""The projector's offsets in Postgres: locked, checked and advanced in each batch's transaction.

A partition's row holds the next offset to apply (-1: nothing applied yet). Locking the rows
of a batch's partitions serialises two projectors that briefly both hold a partition during a
rebalance; the second sees the first's advance and skips what it already applied.

Each batch first takes the schema's batch lock shared; switching a rebuilt schema in takes it
exclusively (`projections.switch`), so no batch is half-way through the schema being swapped,
and the batches after the switch resolve their tables in the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import asyncpg

__all__ = [
    "BATCH_LOCK_KEY", "NOTHING_APPLIED", "advance", "lock", "next_offset", "notify",
    "record_error", "record_times", "stored",
]

NOTHING_APPLIED = -1
CHANNEL = "bend_projection"

# The advisory lock key of a schema's batches: `current_schema()` is the schema the batch's
# connection writes to (its search_path), taken by name.
BATCH_LOCK_KEY = "hashtextextended('bend.projections.batch:' || {schema}, 0)"
_BATCH_LOCK = ("SELECT pg_advisory_xact_lock_shared("
               f"{BATCH_LOCK_KEY.format(schema='current_schema()')})")

_ENSURE = """
INSERT INTO projection_offsets (topic, partition, next_offset)
SELECT t, p, -1 FROM unnest($1::text[], $2::integer[]) AS u (t, p)
ON CONFLICT DO NOTHING
"""

_LOCK = """
SELECT topic, partition, next_offset FROM projection_offsets
WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::integer[]))
ORDER BY topic, partition
FOR UPDATE
"""

_ADVANCE = """
UPDATE projection_offsets o SET next_offset = greatest(o.next_offset, u.n),
    last_record_at = CASE WHEN u.n > o.next_offset THEN coalesce(u.at, o.last_record_at)
                          ELSE o.last_record_at END
FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::timestamptz[]) AS u (t, p, n, at)
WHERE o.topic = u.t AND o.partition = u.p
"""

_ERROR = """
INSERT INTO projection_errors (topic, partition, "offset", error_type, reason)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (topic, partition, "offset") DO UPDATE SET
    error_type = EXCLUDED.error_type, reason = EXCLUDED.reason
"""

Partition = tuple[str, int]


def _columns(partitions: Iterable[Partition]) -> tuple[list[str], list[int]]:
    ordered = sorted(set(partitions))
    return [t for t, _ in ordered], [p for _, p in ordered]


async def lock(conn: asyncpg.Connection, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """Lock the partitions' rows for this transaction; their next offsets (-1: none applied)."""
    topics, numbers = _columns(partitions)
    await conn.execute(_BATCH_LOCK)
    await conn.execute(_ENSURE, topics, numbers)
    rows = await conn.fetch(_LOCK, topics, numbers)
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def advance(conn: asyncpg.Connection, next_offsets: Mapping[Partition, int],
                  record_times: Mapping[Partition, datetime] | None = None) -> None:
    """Move the partitions' next offsets forward (never back), with the Kafka time of the last
    record applied in each (`record_times`, where known)."""
    topics, numbers = _columns(next_offsets)
    times = record_times or {}
    await conn.execute(_ADVANCE, topics, numbers,
                       [next_offsets[tp] for tp in zip(topics, numbers, strict=False)],
                       [times.get(tp) for tp in zip(topics, numbers, strict=False)])


async def record_times(conn: asyncpg.Connection | asyncpg.Pool,
                       topics: Iterable[str]) -> dict[Partition, datetime]:
    """The Kafka time of the last record applied in each partition of `topics` (where known)."""
    rows = await conn.fetch(
        "SELECT topic, partition, last_record_at FROM projection_offsets "
        "WHERE topic = ANY($1::text[]) AND last_record_at IS NOT NULL", list(topics))
    return {(r["topic"], r["partition"]): r["last_record_at"] for r in rows}


async def stored(conn: asyncpg.Connection, topics: Iterable[str]) -> dict[Partition, int]:
    """Next offsets of every partition of `topics` that has applied something."""
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM projection_offsets "
        "WHERE topic = ANY($1::text[]) AND next_offset >= 0", list(topics))
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def next_offset(db: asyncpg.Connection | asyncpg.Pool, topic: str,
                      partition: int) -> int | None:
    """The next offset the read models will apply in one partition (-1: nothing applied yet;
    None: the partition has no row yet)."""
    offset: int | None = await db.fetchval(
        "SELECT next_offset FROM projection_offsets WHERE topic = $1 AND partition = $2",
        topic, partition)
    return offset


async def record_error(conn: asyncpg.Connection, topic: str, partition: int, offset: int,
                       err: BaseException) -> None:
    """Keep why a record was skipped, so it can be found and re-driven."""
    await conn.execute(_ERROR, topic, partition, offset, type(err).__name__, str(err)[:4000])


async def notify(conn: asyncpg.Connection, schema: str) -> None:
    """Wake API waiters (`?wait_for=`, follow streams) when this transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, schema)
