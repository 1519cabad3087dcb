"""The component registry: each component with its versions and input/output schemas."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, need
from projections.queries import components as queries

__all__ = ["router"]

router = APIRouter(prefix="/ui/components", route_class=UiRoute, include_in_schema=False)


@router.get("")
async def components(request: Request, session: Ui, q: str | None = None,
                     cursor: str | None = None) -> Response:
    """Components by name with every version (newest first) and its schemas."""
    need(session, "components:read")
    ctx = context(request)
    search = (q or "").strip()[:200] or None
    found = await queries.list_components(ctx.pool, ctx.settings.tenant, search=search,
                                          after=(cursor or "")[:64] or None, limit=101)
    names = list(found)[:100]
    return page(request, "components.html", {
        "components": [(name, list(reversed(found[name]))) for name in names],
        "q": search or "", "next_cursor": names[-1] if len(found) > 100 else None})
