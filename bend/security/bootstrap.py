"""The first admin key of a project, for local use: the CLI prints it once."""

from __future__ import annotations

import asyncpg

from bend.security.keyfiles import load_keys
from bend.security.keystore import ApiKeyStore
from bend.security.schema import ensure_schema
from bend.settings import Settings

__all__ = ["bootstrap_admin_key"]


async def bootstrap_admin_key(settings: Settings, project: str | None = None) -> str | None:
    """A new admin key's full text if `project` (default: settings.project) has no active admin
    key, else None. Print it once: only its hash is stored."""
    pool = await asyncpg.create_pool(settings.database_dsn(), min_size=1, max_size=1)
    try:
        await ensure_schema(pool)
        store = ApiKeyStore(pool, load_keys(settings).api_key_pepper)
        issued = await store.bootstrap_admin(project or settings.project)
        return issued.key if issued else None
    finally:
        await pool.close()
