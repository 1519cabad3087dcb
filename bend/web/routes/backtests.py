"""Backtests: the project's list with a form to start one, and one backtest's runs beside their
originals with the aggregate. Reads and starts go through bend.services.backtests, as the
API's do."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.services import backtests as service
from bend.web.errors import BadForm
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.session import Session
from projections.queries import backtests as queries
from projections.queries import workflows as workflow_queries

__all__ = ["router"]

router = APIRouter(prefix="/ui/backtests", route_class=UiRoute, include_in_schema=False)

_APPEAR_S = 10.0
_STATUSES = {"completed": ("completed",), "failed": ("failed",),
             "either": ("completed", "failed")}


@router.get("")
async def backtests(request: Request, session: Ui, workflow_id: str | None = None) -> Response:
    """The project's backtests, newest first; operators find a form to start one."""
    need(session, "runs:read")
    ctx = context(request)
    rows = await service.list_backtests(ctx, session.principal,
                                        workflow_id=workflow_id or None, limit=100)
    can_start = session.can("runs:replay")
    workflows = (await workflow_queries.list_workflows(ctx.pool, session.principal.project,
                                                       limit=200)) if can_start else []
    return page(request, "backtests.html", {"rows": rows, "workflow_id": workflow_id or "",
                                            "can_start": can_start, "workflows": workflows})


@router.post("")
async def start(request: Request, session: Ui) -> Response:
    """Start a backtest from the form; its page once it shows in the read models."""
    form = await form_of(request, session, "runs:replay")
    text = str(form.get("changes") or "").strip()
    try:
        changes: Any = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise BadForm(f"the change is not JSON: {err.msg} at line {err.lineno} column "
                      f"{err.colno}") from None
    if not isinstance(changes, dict):
        raise BadForm("the change is a JSON object of the step's fields, e.g. "
                      "{\"prompt\": \"...\"}")
    try:
        limit = int(str(form.get("limit") or "20"))
    except ValueError:
        raise BadForm("the number of runs is a whole number") from None
    if not 1 <= limit <= service.MAX_RUNS:
        raise BadForm(f"the number of runs is between 1 and {service.MAX_RUNS}")
    started = await service.start_backtest(context(request), session.principal,
                                           service.BacktestSpec(
        workflow_id=str(form.get("workflow_id") or ""), step_id=str(form.get("step_id") or ""),
        changes=changes, statuses=_STATUSES.get(str(form.get("status")), ("completed",)),
        limit=limit, live_downstream=form.get("live_downstream") == "on"))
    await _appeared(request, session, started.backtest_id)
    return RedirectResponse(f"/ui/backtests/{started.backtest_id}", status_code=303)


async def _appeared(request: Request, session: Session, backtest_id: str) -> None:
    """Wait (bounded) until a backtest just started shows in the read models."""
    ctx = context(request)
    deadline = time.monotonic() + _APPEAR_S
    while await queries.get_backtest(ctx.pool, session.principal.project, backtest_id) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await ctx.watcher.changed(min(left, 0.5))
        await asyncio.sleep(0)


@router.get("/{backtest_id}")
async def backtest(request: Request, session: Ui, backtest_id: str) -> Response:
    """Each run of the backtest beside its original, and the aggregate."""
    need(session, "runs:read")
    found = await service.get_backtest(context(request), session.principal, backtest_id)
    return page(request, "backtest.html", {"b": found, "s": found["summary"]})
