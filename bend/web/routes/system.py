"""The system page (operators and admins, read-only): workers by role from their consumer
groups, the read models' lag, open circuits, dead letters waiting, health and versions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bend.services import system as service
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, need

__all__ = ["router"]

router = APIRouter(prefix="/ui/system", route_class=UiRoute, include_in_schema=False)


@router.get("")
async def system(request: Request, session: Ui) -> Response:
    """What runs, how far behind it is and what is broken."""
    need(session, "system:read")
    ctx = context(request)
    facts, workers_error = await service.system(ctx, session.principal, ctx.offsets,
                                                ctx.projected)
    return page(request, "system.html", {"sys": facts, "workers_error": workers_error,
                                         "counted": service.DEAD_LETTERS_COUNTED})
