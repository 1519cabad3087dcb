"""Backtests: the project's list, and one backtest's runs beside their originals with the
aggregate. Reads go through bend.services.backtests, as the API's do."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bend.services import backtests as service
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, need

__all__ = ["router"]

router = APIRouter(prefix="/ui/backtests", route_class=UiRoute, include_in_schema=False)


@router.get("")
async def backtests(request: Request, session: Ui, workflow_id: str | None = None) -> Response:
    """The project's backtests, newest first."""
    need(session, "runs:read")
    rows = await service.list_backtests(context(request), session.principal,
                                        workflow_id=workflow_id or None, limit=100)
    return page(request, "backtests.html", {"rows": rows, "workflow_id": workflow_id or ""})


@router.get("/{backtest_id}")
async def backtest(request: Request, session: Ui, backtest_id: str) -> Response:
    """Each run of the backtest beside its original, and the aggregate."""
    need(session, "runs:read")
    found = await service.get_backtest(context(request), session.principal, backtest_id)
    return page(request, "backtest.html", {"b": found, "s": found["summary"]})
