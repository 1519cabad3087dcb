"""`GET /api/audit`: who did what in the project, when and from where (admins).

Three sources, merged newest first by bend.services.audit: the `audit` read model (what people
and triggers did, from the log), admins' changes to keys and secrets, and refused requests.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from bend.api.deps import Context, Sec, consistent, permit
from bend.api.errors import problem_responses
from bend.api.inputs import IsoTime
from bend.api.paging import after_cursor, next_cursor
from bend.security.roles import Principal
from bend.services import audit as service
from bend.services.audit import AuditFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/audit", tags=["audit"], dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 403, 422, 503))

Auditor = Annotated[Principal, Depends(permit("audit:read"))]


class AuditEntry(BaseModel):
    """One thing done (or refused): who, what, when, on what, from where."""

    event_id: str
    occurred_at: Any
    actor: str
    action: str = Field(description="workflow.register, run.request, run.cancel, trigger.fire, "
                                    "…, key.create, key.revoke, secret.set, secret.delete, "
                                    "access.unauthenticated, access.forbidden")
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
    rows = await service.list_audit(
        ctx, security, principal, AuditFilter(actor, action, workflow_id, since, until),
        after=after_cursor(cursor), limit=limit)
    return AuditPage(items=[AuditEntry.model_validate(r) for r in rows[:limit]],
                     next_cursor=next_cursor(rows, limit, "occurred_at", "event_id"))
