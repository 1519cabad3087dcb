"""`GET /api/audit`: who did what in the project, when and from where (admins).

Two sources, merged newest first: the `audit` read model (what people and triggers did, from
the log) and the refused requests (401/403, kept by the API in `sec_access_denials`; those of
no known project are shown to installation admins only).
"""

from __future__ import annotations

import heapq
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from bend.api.deps import Context, Sec, consistent, permit
from bend.api.errors import problem_responses
from bend.api.inputs import IsoTime
from bend.api.paging import after_cursor, next_cursor
from bend.security.roles import Principal, installation_admin
from projections.queries import audit as queries

__all__ = ["router"]

router = APIRouter(prefix="/api/audit", tags=["audit"], dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 403, 422, 503))

Auditor = Annotated[Principal, Depends(permit("audit:read"))]
DENIALS = ("access.unauthenticated", "access.forbidden")


class AuditEntry(BaseModel):
    """One thing done (or refused): who, what, when, on what, from where."""

    event_id: str
    occurred_at: Any
    actor: str
    action: str = Field(description="workflow.register, run.request, run.cancel, trigger.fire, "
                                    "…, access.unauthenticated, access.forbidden")
    project: str | None
    workflow_id: str | None = None
    run_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict,
                                   description="What else the event or refusal says "
                                               "(for refusals: method, path, status, client_ip)")


class AuditPage(BaseModel):
    """Audit entries, newest first; `next_cursor` pages on."""

    items: list[AuditEntry]
    next_cursor: str | None


@router.get("", response_model=AuditPage)
async def list_audit(
    ctx: Context, principal: Auditor, security: Sec,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    workflow_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[IsoTime | None, Query(description="At or after")] = None,
    until: Annotated[IsoTime | None, Query(description="Before")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> AuditPage:
    """The project's audit log, newest first, filtered by actor, action, workflow and time."""
    after = after_cursor(cursor)
    sources = []
    if action is None or action not in DENIALS:
        sources.append(await queries.list_audit(
            ctx.pool, principal.project, actor=actor, action=action, workflow_id=workflow_id,
            since=since, until=until, after=after, limit=limit + 1))
    if workflow_id is None and (action is None or action in DENIALS):
        denials = await security.denials.list(
            principal.project, include_unknown=installation_admin(principal,
                                                                  ctx.settings.project),
            actor=actor, since=since, until=until, after=after, limit=limit + 1)
        sources.append([_denial_entry(d) for d in denials if action in (None, d["action"])])
    key = lambda row: (row["occurred_at"], row["event_id"])  # noqa: E731 - a sort key
    rows = list(heapq.merge(*sources, key=key, reverse=True))[:limit + 1]
    return AuditPage(items=[AuditEntry.model_validate(r) for r in rows[:limit]],
                     next_cursor=next_cursor(rows, limit, "occurred_at", "event_id"))


def _denial_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": row["event_id"], "occurred_at": row["occurred_at"],
            "actor": row["actor"], "action": row["action"], "project": row["project"],
            "detail": {k: row[k] for k in ("status", "code", "method", "path", "client_ip")}}
