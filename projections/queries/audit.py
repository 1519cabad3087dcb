"""Reads of `audit`: who did what in a project, newest first, filtered and paged."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

__all__ = ["list_audit"]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def list_audit(db: Db, project: str, *, actor: str | None = None,
                     action: str | None = None, workflow_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     after: tuple[datetime, str] | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
    """Audit rows of `project` after the cursor `after` (occurred_at, event_id), newest first."""
    rows = await db.fetch(
        "SELECT event_id, occurred_at, actor, action, project, workflow_id, workflow_version,"
        " run_id, detail FROM audit WHERE project = $1"
        " AND ($2::text IS NULL OR actor = $2)"
        " AND ($3::text IS NULL OR action = $3)"
        " AND ($4::text IS NULL OR workflow_id = $4)"
        " AND ($5::timestamptz IS NULL OR occurred_at >= $5)"
        " AND ($6::timestamptz IS NULL OR occurred_at < $6)"
        " AND ($7::timestamptz IS NULL OR (occurred_at, event_id) < ($7, $8))"
        " ORDER BY occurred_at DESC, event_id DESC LIMIT $9",
        project, actor, action, workflow_id, since, until,
        after[0] if after else None, after[1] if after else None, limit)
    return [dict(r) for r in rows]
