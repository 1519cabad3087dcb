"""Reads of `components`: the catalogue of component versions, newest version last."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

__all__ = ["get_version", "list_components", "version_key", "versions"]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection

_COLUMNS = """name, version, description, tags, input_schema, output_schema, project,
              registered_by, registered_at"""


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a version, as the component registry orders them (`10` after `9`)."""
    return tuple((1, int(p)) if p.isdigit() else (0, p)
                 for p in version.replace("-", ".").split("."))


async def get_version(db: Db, tenant: str, name: str, version: str) -> dict[str, Any] | None:
    """One component version, or None."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM components WHERE tenant = $1 AND name = $2 "
                            "AND version = $3", tenant, name, version)
    return dict(row) if row else None


async def versions(db: Db, tenant: str, name: str) -> list[dict[str, Any]]:
    """Every version of component `name`, oldest version first."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM components WHERE tenant = $1 AND name = $2",
                          tenant, name)
    return sorted((dict(r) for r in rows), key=lambda r: version_key(r["version"]))


async def list_components(db: Db, tenant: str, *, search: str | None = None,
                          tag: list[str] | None = None, after: str | None = None,
                          limit: int = 100) -> dict[str, list[dict[str, Any]]]:
    """Up to `limit` component names (after `after`, by name) with every version of each.

    A name is listed when one of its versions holds every word of `search` in its name or
    description and carries every tag of `tag`.
    """
    where, args = ["tenant = $1"], [tenant]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for word in (search or "").split():
        pattern = arg(f"%{_escape_like(word)}%")
        where.append(f"(name ILIKE {pattern} OR description ILIKE {pattern})")
    if tag:
        where.append(f"tags @> {arg(tag)}::text[]")
    if after:
        where.append(f"name > {arg(after)}")
    names = [r["name"] for r in await db.fetch(
        f"SELECT DISTINCT name FROM components WHERE {' AND '.join(where)} "
        f"ORDER BY name LIMIT {arg(limit)}", *args)]
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM components WHERE tenant = $1 "
                          "AND name = ANY($2::text[])", tenant, names)
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for row in rows:
        found[row["name"]].append(dict(row))
    for listed in found.values():
        listed.sort(key=lambda r: version_key(r["version"]))
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
