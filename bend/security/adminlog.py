"""Admin actions on keys and secrets (created, revoked, set, deleted) kept for the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from bend.security.keystore import Clock, utcnow

__all__ = ["ADMIN_ACTIONS", "AdminAction", "AdminLog"]

ADMIN_ACTIONS = ("key.create", "key.revoke", "secret.set", "secret.delete")


@dataclass(frozen=True, slots=True)
class AdminAction:
    """One change to a key or a secret: `target` is `key:<key_id>` or `secret:<name>`."""

    project: str
    actor: str
    action: str
    target: str
    client_ip: str
    detail: dict[str, Any] = field(default_factory=dict)


class AdminLog:
    """Appends admin actions to `sec_admin_actions` and reads them back, newest first."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def record(self, done: AdminAction) -> None:
        """Keep `done` (never pass a key or a secret value in its detail)."""
        await self._pool.execute(
            "INSERT INTO sec_admin_actions (occurred_at, project, actor, action, target,"
            " client_ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            self._clock(), done.project, done.actor[:200], done.action, done.target[:300],
            done.client_ip[:64], json.dumps(done.detail, default=str))

    async def list(self, project: str, *, actor: str | None, action: str | None,
                   since: datetime | None, until: datetime | None,
                   after: tuple[datetime, str] | None, limit: int) -> list[dict[str, Any]]:
        """Actions in `project`, newest first, as audit rows (`event_id` is `admin:<id>`)."""
        rows = await self._pool.fetch(
            "SELECT 'admin:' || lpad(action_id::text, 20, '0') AS event_id, occurred_at, actor,"
            " action, project, target, client_ip, detail FROM sec_admin_actions"
            " WHERE project = $1 AND ($2::text IS NULL OR actor = $2)"
            " AND ($3::text IS NULL OR action = $3)"
            " AND ($4::timestamptz IS NULL OR occurred_at >= $4)"
            " AND ($5::timestamptz IS NULL OR occurred_at < $5)"
            " AND ($6::timestamptz IS NULL OR (occurred_at, 'admin:' ||"
            "      lpad(action_id::text, 20, '0')) < ($6, $7))"
            " ORDER BY occurred_at DESC, action_id DESC LIMIT $8",
            project, actor, action, since, until,
            after[0] if after else None, after[1] if after else None, limit)
        out = []
        for r in rows:
            detail = r["detail"]
            detail = json.loads(detail) if isinstance(detail, str) else dict(detail or {})
            out.append({"event_id": r["event_id"], "occurred_at": r["occurred_at"],
                        "actor": r["actor"], "action": r["action"], "project": r["project"],
                        "detail": {**detail, "resource": r["target"],
                                   "client_ip": r["client_ip"]}})
        return out
