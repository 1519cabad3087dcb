"""The `sec_*` tables: apply bend/security/migrations/*.sql once each, in order."""

from __future__ import annotations

import hashlib
from importlib import resources

import asyncpg

__all__ = ["ensure_schema", "migrations"]

# One number for "the security schema is being migrated", so API processes starting together
# take turns instead of racing on CREATE TABLE.
_LOCK_ID = int.from_bytes(hashlib.sha256(b"bend.security.schema").digest()[:8], "big", signed=True)


def migrations() -> list[tuple[str, str]]:
    """(version, sql) of every migration file, in file-name order."""
    folder = resources.files("bend.security").joinpath("migrations")
    files = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
    )
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in files]


async def ensure_schema(pool: asyncpg.Pool) -> list[str]:
    """Create or update the `sec_*` tables in the connection's schema; returns versions applied."""
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS sec_schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM sec_schema_migrations")}
        for version, sql in migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO sec_schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    return applied
