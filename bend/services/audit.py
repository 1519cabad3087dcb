"""The audit log of a project: who did what, when and from where (admins).

Three sources, merged newest first: the `audit` read model (what people and triggers did, from
the log), the admins' changes to keys and secrets (`sec_admin_actions`) and the refused requests
(`sec_access_denials`; those of no known project are shown to installation admins only).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bend.security.adminlog import ADMIN_ACTIONS
from bend.security.dependencies import Security
from bend.security.roles import Principal, installation_admin, require
from bend.services.deps import Deps
from projections.queries import audit as queries

__all__ = ["ACTIONS", "DENIALS", "AuditFilter", "list_audit"]

DENIALS = ("access.unauthenticated", "access.forbidden")
ACTIONS = ("workflow.register", "workflow.version", "workflow.activate", "workflow.pause",
           "workflow.delete", "run.request", "run.cancel", "trigger.fire", "dead_letter.record",
           *ADMIN_ACTIONS, *DENIALS)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries: by actor, action, workflow and time (`since` inclusive, `until` not)."""

    actor: str | None = None
    action: str | None = None
    workflow_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_audit(deps: Deps, security: Security, principal: Principal, where: AuditFilter,
                     *, after: tuple[datetime, str] | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit + 1` entries, newest first (one more than asked says there are more)."""
    require(principal, "audit:read")
    action, sources = where.action, []
    if action is None or (action not in DENIALS and action not in ADMIN_ACTIONS):
        sources.append(await queries.list_audit(
            deps.pool, principal.project, actor=where.actor, action=action,
            workflow_id=where.workflow_id, since=where.since, until=where.until, after=after,
            limit=limit + 1))
    if where.workflow_id is None and (action is None or action in ADMIN_ACTIONS):
        sources.append(await security.admin_log.list(
            principal.project, actor=where.actor, action=action, since=where.since,
            until=where.until, after=after, limit=limit + 1))
    if where.workflow_id is None and (action is None or action in DENIALS):
        denials = await security.denials.list(
            principal.project, include_unknown=installation_admin(principal,
                                                                  deps.settings.project),
            actor=where.actor, since=where.since, until=where.until, after=after,
            limit=limit + 1)
        sources.append([_denial_entry(d) for d in denials if action in (None, d["action"])])
    key = lambda row: (row["occurred_at"], row["event_id"])  # noqa: E731 - a sort key
    return list(heapq.merge(*sources, key=key, reverse=True))[:limit + 1]


def _denial_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": row["event_id"], "occurred_at": row["occurred_at"],
            "actor": row["actor"], "action": row["action"], "project": row["project"],
            "detail": {k: row[k] for k in ("status", "code", "method", "path", "client_ip")}}
