"""Versioned SQL migrations of the read models, applied in order under an advisory lock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import asyncpg
import structlog

from projections.db import check_schema
from projections.errors import MigrationChanged

__all__ = ["MIGRATIONS_DIR", "Migration", "migrate", "migrations"]

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text, recorded when applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration in projections/migrations/, by version."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: name migrations NNNN_what_it_does.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migration versions must run 1..n without gaps, got {versions}")
    return tuple(found)


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Create `schema` if needed and apply the migrations it lacks; the versions applied.

    One transaction under a transaction-level advisory lock, so processes starting together
    apply each migration once and a failed migration leaves nothing behind.
    """
    check_schema(schema)
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           f"bend.projections.migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"]: r for r in await conn.fetch(
            "SELECT version, name, checksum FROM schema_migrations")}
        for m in migrations():
            if m.version in done:
                if done[m.version]["checksum"] != m.checksum:
                    raise MigrationChanged(m.version, m.name, schema)
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version, m.name, m.checksum)
            applied.append(m.version)
    if applied:
        log.info("projections_migrated", schema=schema, applied=applied)
    return applied
