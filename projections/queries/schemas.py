"""Statements on whole read-model schemas, as a rebuild switches one in: whether a schema exists
or holds the projector's offsets or a table, dropping and renaming schemas, moving a table
between them.

Schema and table names are checked identifiers (projections.db.check_schema), never user text.
"""

from __future__ import annotations

from typing import Any

__all__ = ["drop_schema", "has_offsets", "has_table", "move_table", "rename_schema",
           "schema_exists"]


async def schema_exists(conn: Any, schema: str) -> bool:
    """Whether the database has a schema named `schema`."""
    return bool(await conn.fetchval("SELECT to_regnamespace($1) IS NOT NULL", schema))


async def has_table(conn: Any, table: str) -> bool:
    """Whether `table` (a name, or schema.name) resolves on the connection's search path."""
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def has_offsets(conn: Any, schema: str) -> bool:
    """Whether `schema` holds the projector's offsets (a live read model, not an empty one)."""
    return bool(await conn.fetchval(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 "
        "AND tablename = 'projection_offsets'", schema))


async def drop_schema(conn: Any, schema: str, *, if_exists: bool = False) -> None:
    """Drop `schema` and everything in it."""
    await conn.execute(f"DROP SCHEMA {'IF EXISTS ' if if_exists else ''}{schema} CASCADE")


async def rename_schema(conn: Any, schema: str, to: str) -> None:
    """Rename `schema` to `to`."""
    await conn.execute(f"ALTER SCHEMA {schema} RENAME TO {to}")


async def move_table(conn: Any, table: str, source: str, target: str) -> None:
    """Move `source.table` into `target` (replacing any table of that name there); nothing when
    `source` has no such table."""
    if await has_table(conn, f"{source}.{table}"):
        await conn.execute(f"DROP TABLE IF EXISTS {target}.{table}")
        await conn.execute(f"ALTER TABLE {source}.{table} SET SCHEMA {target}")
