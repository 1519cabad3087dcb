"""Reads and writes of `notification_deliveries`, the notifier's delivery log."""

from __future__ import annotations

from typing import Any

__all__ = ["begin", "deliveries", "finish"]

Db = Any  # an asyncpg Pool or Connection (asyncpg has no type stubs)


async def begin(db: Db, *, delivery_id: str, run_id: str, project: str, workflow_id: str,
                event: str, event_id: str, channel: str, target: str) -> str | None:
    """Record the delivery as being sent; the status it already had (None: a new one)."""
    row = await db.fetchrow(
        "WITH found AS (SELECT status FROM notification_deliveries WHERE delivery_id = $1), "
        "made AS (INSERT INTO notification_deliveries (delivery_id, run_id, project, "
        "workflow_id, event, event_id, channel, target, status) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'sending') "
        "ON CONFLICT (delivery_id) DO NOTHING RETURNING 1) "
        "SELECT (SELECT status FROM found) AS status",
        delivery_id, run_id, project, workflow_id, event, event_id, channel, target)
    return str(row["status"]) if row and row["status"] is not None else None


async def finish(db: Db, delivery_id: str, *, delivered: bool, attempts: int,
                 response_status: int | None, error: str | None) -> None:
    """Record how the delivery ended (its tries so far counted in)."""
    await db.execute(
        "UPDATE notification_deliveries SET status = $2, attempts = attempts + $3, "
        "response_status = $4, last_error = $5, updated_at = now(), "
        "delivered_at = CASE WHEN $2 = 'delivered' THEN now() END WHERE delivery_id = $1",
        delivery_id, "delivered" if delivered else "failed", attempts, response_status, error)


async def deliveries(db: Db, project: str, *, run_id: str | None = None,
                     limit: int = 200) -> list[dict[str, Any]]:
    """The project's deliveries (of `run_id` only, if given), newest first."""
    rows = await db.fetch(
        "SELECT delivery_id, run_id, workflow_id, event, event_id, channel, target, status, "
        "attempts, response_status, last_error, created_at, delivered_at "
        "FROM notification_deliveries WHERE project = $1 AND ($2::text IS NULL OR run_id = $2) "
        "ORDER BY created_at DESC, delivery_id LIMIT $3", project, run_id, limit)
    return [dict(r) for r in rows]
