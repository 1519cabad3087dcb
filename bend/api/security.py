"""The API's security state: the `sec_*` tables in a schema of their own, the Security bundle and
the first admin key.

The tables live outside the read models' schema on purpose: a rebuild fills a fresh read
schema and swaps to it, and keys, secrets and seen webhook deliveries must survive that. The
schema is named after the installation's topic prefix (`bend` -> `bend_security`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import asyncpg

from bend.security.dependencies import Security, build_security
from bend.security.keyfiles import load_keys
from bend.security.keystore import ApiKeyStore
from bend.security.schema import ensure_schema
from bend.settings import Settings
from projections.db import check_schema, create_pool, database_url

__all__ = ["bootstrap_key", "open_security", "security_pool", "security_schema"]


def security_schema(settings: Settings) -> str:
    """The schema holding the `sec_*` tables: `<topic prefix>_security`."""
    prefix = re.sub(r"[^a-z0-9_]", "_", settings.kafka.topic_prefix.lower())
    return check_schema(f"{prefix}_security"[:63])


@contextlib.asynccontextmanager
async def security_pool(settings: Settings, max_size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the security schema (created, with its tables, if missing)."""
    schema = security_schema(settings)
    url = database_url(settings)
    pool = await create_pool(url, schema, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn, conn.transaction():
            # Processes starting together would race on CREATE SCHEMA IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                               f"bend.security.schema:{schema}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await ensure_schema(pool)
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def open_security(settings: Settings) -> AsyncIterator[Security]:
    """The Security bundle over its own pool, for the app's lifespan."""
    async with security_pool(settings, max_size=max(2, settings.database.max_pool // 2)) as pool:
        yield await build_security(pool, settings)


async def bootstrap_key(settings: Settings, project: str | None = None) -> str | None:
    """A new admin key's full text if `project` (default: settings.project) has no active admin
    key, else None. Show it once: only its hash is stored."""
    async with security_pool(settings, max_size=1) as pool:
        store = ApiKeyStore(pool, load_keys(settings).api_key_pepper)
        issued = await store.bootstrap_admin(project or settings.project)
    return issued.key if issued else None
