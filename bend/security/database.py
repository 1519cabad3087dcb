"""The `sec_*` tables' own schema (`<topic prefix>_security`) and pools on it.

The tables live outside the read models' schema on purpose: a rebuild fills a fresh read
schema and swaps to it, and keys, secrets and seen webhook deliveries must survive that. The API
and the executors (which read secrets) open pools here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import asyncpg

from bend.security.schema import ensure_schema
from bend.settings import Settings
from projections.db import check_schema, create_pool, database_url

__all__ = ["open_security_pool", "security_pool", "security_schema"]


def security_schema(settings: Settings) -> str:
    """The schema holding the `sec_*` tables: `<topic prefix>_security`."""
    prefix = re.sub(r"[^a-z0-9_]", "_", settings.kafka.topic_prefix.lower())
    return check_schema(f"{prefix}_security"[:63])


async def open_security_pool(settings: Settings, max_size: int = 4) -> asyncpg.Pool:
    """A small pool on the security schema (created, with its tables, if missing); close it."""
    schema = security_schema(settings)
    pool = await create_pool(database_url(settings), schema, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn, conn.transaction():
            # Processes starting together would race on CREATE SCHEMA IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                               f"bend.security.schema:{schema}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await ensure_schema(pool)
    except BaseException:
        await pool.close()
        raise
    return pool


@contextlib.asynccontextmanager
async def security_pool(settings: Settings, max_size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the security schema (created, with its tables, if missing)."""
    pool = await open_security_pool(settings, max_size)
    try:
        yield pool
    finally:
        await pool.close()
