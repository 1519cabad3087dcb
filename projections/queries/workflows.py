"""Reads of `workflows` and `workflow_versions`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "active_latest", "get_version", "get_workflow", "latest_definitions", "list_workflows",
    "versions",
]

_COLUMNS = """workflow_id, name, description, status, latest_version, tenant, project,
              created_at, updated_at, deleted_at"""


async def get_workflow(db: asyncpg.Pool | asyncpg.Connection, project: str,
                       workflow_id: str) -> dict[str, Any] | None:
    """One workflow of `project`, or None."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM workflows WHERE workflow_id = $1 "
                            "AND project = $2", workflow_id, project)
    return dict(row) if row else None


async def get_version(db: asyncpg.Pool | asyncpg.Connection, workflow_id: str,
                      version: int) -> dict[str, Any] | None:
    """One version: its definition and hash, or None."""
    row = await db.fetchrow(
        "SELECT workflow_id, version, definition, definition_hash, created_at "
        "FROM workflow_versions WHERE workflow_id = $1 AND version = $2", workflow_id, version)
    return dict(row) if row else None


async def versions(db: asyncpg.Pool | asyncpg.Connection,
                   workflow_id: str) -> list[dict[str, Any]]:
    """Every version's number, hash and time, oldest first."""
    rows = await db.fetch("SELECT version, definition_hash, created_at FROM workflow_versions "
                          "WHERE workflow_id = $1 ORDER BY version", workflow_id)
    return [dict(r) for r in rows]


async def list_workflows(db: asyncpg.Pool | asyncpg.Connection, project: str, *,
                         search: str | None = None, statuses: list[str] | None = None,
                         after: tuple[datetime, str] | None = None,
                         limit: int = 50) -> list[dict[str, Any]]:
    """Workflows of `project`, newest first, after the cursor's row; deleted ones only if asked."""
    where = ["project = $1"]
    args: list[Any] = [project]
    if statuses:
        args.append(statuses)
        where.append(f"status = ANY(${len(args)}::text[])")
    else:
        where.append("status <> 'deleted'")
    if search:
        args.append(f"%{_escape_like(search)}%")
        where.append(f"(name ILIKE ${len(args)} OR description ILIKE ${len(args)})")
    if after is not None:
        args.extend(after)
        where.append(f"(created_at, workflow_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM workflows WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, workflow_id DESC LIMIT ${len(args)}", *args)
    return [dict(r) for r in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def latest_definitions(db: asyncpg.Pool | asyncpg.Connection, project: str
                             ) -> list[dict[str, Any]]:
    """Each live workflow of `project` with its latest version's definition, by name."""
    rows = await db.fetch(
        "SELECT w.workflow_id, w.name, w.latest_version, v.definition FROM workflows w "
        "JOIN workflow_versions v ON v.workflow_id = w.workflow_id "
        "AND v.version = w.latest_version "
        "WHERE w.project = $1 AND w.status <> 'deleted' ORDER BY w.name, w.workflow_id",
        project)
    return [dict(r) for r in rows]


async def active_latest(db: asyncpg.Pool | asyncpg.Connection, project: str,
                        workflow: str) -> dict[str, Any] | None:
    """The active workflow of `project` with that id or name (the newest, if names repeat): its
    id, tenant, latest version and that version's definition; None if there is none."""
    row = await db.fetchrow(
        "SELECT w.workflow_id, w.tenant, v.version, v.definition FROM workflows w "
        "JOIN workflow_versions v ON v.workflow_id = w.workflow_id "
        "AND v.version = w.latest_version WHERE w.project = $1 "
        "AND (w.workflow_id = $2 OR w.name = $2) AND w.status = 'active' "
        "ORDER BY w.created_at DESC LIMIT 1", project, workflow)
    return dict(row) if row else None
