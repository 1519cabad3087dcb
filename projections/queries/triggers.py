"""Reads of `triggers`: a project's triggers, its webhooks, and a webhook by its path."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

__all__ = [
    "fired_keys", "get_trigger", "list_errors", "list_triggers", "list_webhooks",
    "manual_default_input", "webhook_by_path",
]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection

_COLUMNS = """trigger_id, workflow_id, trigger_type, definition, enabled, tenant, project,
              webhook_path, registered_at, updated_at, firings, first_fired_at, last_fired_at,
              last_due_at, last_error, last_error_at, last_error_stage, error_count"""
# Rows a firing made without a registration have no definition: they are not the API's.
_LIVE = "removed_at IS NULL AND definition IS NOT NULL"


async def get_trigger(db: Db, project: str, trigger_id: str) -> dict[str, Any] | None:
    """One trigger of `project` not removed, or None."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM triggers WHERE trigger_id = $1 "
                            f"AND project = $2 AND {_LIVE}", trigger_id, project)
    return dict(row) if row else None


async def list_triggers(db: Db, project: str, workflow_id: str) -> list[dict[str, Any]]:
    """The triggers of a workflow of `project`, oldest first."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM triggers WHERE project = $1 AND "
                          f"workflow_id = $2 AND {_LIVE} ORDER BY registered_at, trigger_id",
                          project, workflow_id)
    return [dict(r) for r in rows]


async def manual_default_input(db: Db, project: str, workflow_id: str) -> Any:
    """The `default_input` of the workflow's enabled manual trigger (the oldest), or None."""
    return await db.fetchval(
        "SELECT definition->'default_input' FROM triggers WHERE project = $1 AND "
        f"workflow_id = $2 AND trigger_type = 'manual' AND enabled AND {_LIVE} "
        "ORDER BY registered_at, trigger_id LIMIT 1", project, workflow_id)


async def list_webhooks(db: Db, project: str) -> list[dict[str, Any]]:
    """The webhook triggers of `project`, by path."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM triggers WHERE project = $1 AND "
                          f"webhook_path IS NOT NULL AND {_LIVE} ORDER BY webhook_path, "
                          "registered_at", project)
    return [dict(r) for r in rows]


async def webhook_by_path(db: Db, path: str) -> dict[str, Any] | None:
    """The webhook trigger listening on `path` (of any project; the first registered), or None."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM triggers WHERE webhook_path = $1 AND "
                            f"{_LIVE} ORDER BY registered_at, trigger_id LIMIT 1", path)
    return dict(row) if row else None


async def fired_keys(db: Db, trigger_id: str, keys: list[str]) -> dict[str, str | None]:
    """Which of `keys` the trigger fired already: dedupe key -> the run it started."""
    rows = await db.fetch("SELECT dedupe_key, run_id FROM trigger_firings WHERE trigger_id = $1 "
                          "AND dedupe_key = ANY($2::text[])", trigger_id, keys)
    return {r["dedupe_key"]: r["run_id"] for r in rows}


async def list_errors(db: Db, trigger_id: str, limit: int) -> list[dict[str, Any]]:
    """The trigger's latest failures, newest first."""
    rows = await db.fetch("SELECT event_id, stage, error, source, failed_at FROM trigger_errors "
                          "WHERE trigger_id = $1 ORDER BY failed_at DESC, event_id LIMIT $2",
                          trigger_id, limit)
    return [dict(r) for r in rows]
