"""Turns across API processes: a transaction-scoped Postgres advisory lock, held while a write
is sent and until the read models show it (a workflow's next version, a webhook's path, a
component's version), so two processes never both decide from the same read."""

from __future__ import annotations

import asyncpg

__all__ = ["take_turn"]


async def take_turn(conn: asyncpg.Connection, key: str) -> None:
    """Wait until no other transaction holds `key`, then hold it until this one ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
