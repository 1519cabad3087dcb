"""Any other /ui address: a 404 page (after sign-in, so it tells nothing to strangers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bend.web.errors import NotFound
from bend.web.routes.common import Ui, UiRoute

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


@router.api_route("/{path:path}", methods=["GET", "POST"])
async def unknown(request: Request, _session: Ui, path: str) -> Response:
    """No page lives here."""
    raise NotFound(f"no page at /ui/{path[:200]}; start from the runs list")
