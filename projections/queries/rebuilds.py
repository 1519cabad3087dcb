"""`projection_rebuilds`: each projection rebuild's status, claimed, beaten and finished by the
process running it and read by any API replica. Times come from Postgres's clock, so replicas
with skewed clocks agree on which rebuild stopped beating."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

__all__ = ["TERMINAL", "abandon", "claim", "get_rebuild", "record"]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
TERMINAL = ("switched", "refused", "failed", "abandoned")

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('bend.projections.rebuild', 0))"
_COLUMNS = """rebuild_id, phase, only_projection, live_schema, records, total, events_per_second,
              differences, error, status, owner, started_at, heartbeat_at, finished_at"""


async def get_rebuild(db: Db, rebuild_id: str, abandoned_after_s: float) -> dict[str, Any] | None:
    """One rebuild's row, with `stale` (unfinished, and no heartbeat for `abandoned_after_s`);
    None if unknown."""
    row = await db.fetchrow(
        f"SELECT {_COLUMNS}, (finished_at IS NULL "
        "AND heartbeat_at < now() - make_interval(secs => $2)) AS stale "
        "FROM projection_rebuilds WHERE rebuild_id = $1", rebuild_id, abandoned_after_s)
    return None if row is None else dict(row)


async def claim(conn: asyncpg.Connection, row: dict[str, Any],
                abandoned_after_s: float) -> dict[str, Any] | None:
    """Record a new rebuild as running unless another runs (None), else the one running.

    An unfinished rebuild silent for `abandoned_after_s` is marked abandoned first; one
    statement under a transaction lock, so two replicas never both claim.
    """
    async with conn.transaction():
        await conn.execute(_LOCK)
        running = await conn.fetchrow(
            f"SELECT {_COLUMNS}, (heartbeat_at < now() - make_interval(secs => $1)) AS stale "
            "FROM projection_rebuilds WHERE finished_at IS NULL", abandoned_after_s)
        if running is not None and not running["stale"]:
            return dict(running)
        if running is not None:
            await abandon(conn, running["rebuild_id"])
        await conn.execute(
            "INSERT INTO projection_rebuilds (rebuild_id, phase, only_projection, live_schema, "
            "status, owner, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())",
            row["rebuild_id"], row["phase"], row["only"], row["live_schema"], row,
            row["owner"], datetime.fromisoformat(row["started_at"]))
    return None


async def abandon(db: Db, rebuild_id: str) -> None:
    """Mark an unfinished rebuild abandoned (its process stopped beating)."""
    await db.execute(
        "UPDATE projection_rebuilds SET phase = 'abandoned', finished_at = now(), "
        "error = coalesce(error, 'its process stopped reporting progress at ' || "
        "heartbeat_at::text || ' and was presumed dead') "
        "WHERE rebuild_id = $1 AND finished_at IS NULL", rebuild_id)


async def record(db: Db, status: dict[str, Any], *, finished: bool) -> bool:
    """Write a running rebuild's status (and end it when `finished`); False if it is no longer
    this process's to write (another marked it abandoned)."""
    done: str = await db.execute(
        "UPDATE projection_rebuilds SET phase = $2, records = $3, total = $4, "
        "events_per_second = $5, differences = $6, error = $7, status = $8, heartbeat_at = now(), "
        "finished_at = CASE WHEN $9 THEN now() END "
        "WHERE rebuild_id = $1 AND finished_at IS NULL",
        status["rebuild_id"], status["phase"], status["records"], status["total"],
        status["events_per_second"], status["differences"], status["error"], status, finished)
    return done != "UPDATE 0"
