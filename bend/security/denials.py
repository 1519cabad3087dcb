"""Refused API requests (401, 403) kept for the audit log: who, what, when and from where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bend.security.keystore import Clock, utcnow

__all__ = ["Denial", "DenialLog", "UNAUTHENTICATED"]

UNAUTHENTICATED = "anonymous"  # the actor of a request that proved no identity


@dataclass(frozen=True, slots=True)
class Denial:
    """One refused request."""

    status: int
    code: str
    method: str
    path: str
    client_ip: str
    project: str | None = None
    actor: str = UNAUTHENTICATED


class DenialLog:
    """Appends denials to `sec_access_denials` and reads them back, newest first."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def record(self, denial: Denial) -> None:
        """Keep `denial` (paths are cut to 500 characters: they are the caller's text)."""
        await self._pool.execute(
            "INSERT INTO sec_access_denials (occurred_at, project, actor, status, code, method,"
            " path, client_ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            self._clock(), denial.project, denial.actor[:200], denial.status, denial.code[:100],
            denial.method[:16], denial.path[:500], denial.client_ip[:64])

    async def list(self, project: str | None, *, include_unknown: bool, actor: str | None,
                   since: datetime | None, until: datetime | None,
                   after: tuple[datetime, str] | None, limit: int) -> list[dict[str, Any]]:
        """Denials of `project` (and those of no project when `include_unknown`), newest first,
        as audit rows (`event_id` is `denial:<id>`)."""
        rows = await self._pool.fetch(
            "SELECT 'denial:' || lpad(denial_id::text, 20, '0') AS event_id, occurred_at, actor,"
            " CASE status WHEN 401 THEN 'access.unauthenticated' ELSE 'access.forbidden' END"
            " AS action, project, status, code, method, path, client_ip"
            " FROM sec_access_denials"
            " WHERE (project = $1 OR ($2 AND project IS NULL))"
            " AND ($3::text IS NULL OR actor = $3)"
            " AND ($4::timestamptz IS NULL OR occurred_at >= $4)"
            " AND ($5::timestamptz IS NULL OR occurred_at < $5)"
            " AND ($6::timestamptz IS NULL OR (occurred_at, 'denial:' ||"
            "      lpad(denial_id::text, 20, '0')) < ($6, $7))"
            " ORDER BY occurred_at DESC, denial_id DESC LIMIT $8",
            project, include_unknown, actor, since, until,
            after[0] if after else None, after[1] if after else None, limit)
        return [dict(r) for r in rows]
