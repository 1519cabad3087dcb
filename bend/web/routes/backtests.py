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

from bend.core.backtests import InvalidOverride, UnknownBacktestStep
from bend.services import backtests as service
from bend.services.backtests import NoRunsToBacktest, RunNotBacktestable
from bend.services.errors import UnknownWorkflow
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


_FIELDS = ("workflow_id", "step_id", "changes", "status", "limit", "live_downstream")


async def _list(request: Request, session: Session, workflow_id: str | None, *,
                typed: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                status: int = 200) -> Response:
    ctx = context(request)
    rows = await service.list_backtests(ctx, session.principal,
                                        workflow_id=workflow_id or None, limit=100)
    can_start = session.can("runs:replay")
    workflows = (await workflow_queries.list_workflows(ctx.pool, session.principal.project,
                                                       limit=200)) if can_start else []
    return page(request, "backtests.html", {
        "rows": rows, "workflow_id": workflow_id or "", "can_start": can_start,
        "workflows": workflows, "typed": typed or {"limit": "20", "status": "completed"},
        "errors": errors or {}}, status=status)


@router.get("")
async def backtests(request: Request, session: Ui, workflow_id: str | None = None) -> Response:
    """The project's backtests, newest first; operators find a form to start one."""
    need(session, "runs:read")
    return await _list(request, session, workflow_id)


def _checked(typed: dict[str, str]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The form's change and number of runs, and its errors by field."""
    errors: dict[str, str] = {}
    changes: Any = {}
    if typed["changes"].strip():
        try:
            changes = json.loads(typed["changes"])
        except json.JSONDecodeError as err:
            errors["changes"] = (f"the change is not JSON: {err.msg} at line {err.lineno} "
                                 f"column {err.colno}")
    if not isinstance(changes, dict):
        errors["changes"] = ("the change is a JSON object of the step's fields, e.g. "
                             "{\"prompt\": \"...\"}")
        changes = {}
    limit = 0
    try:
        limit = int(typed["limit"].strip() or "20")
    except ValueError:
        errors["limit"] = "the number of runs is a whole number"
    if "limit" not in errors and not 1 <= limit <= service.MAX_RUNS:
        errors["limit"] = f"the number of runs is between 1 and {service.MAX_RUNS}"
    return changes, limit, errors


@router.post("")
async def start(request: Request, session: Ui) -> Response:
    """Start a backtest from the form, its page once it shows in the read models; a refused
    form comes back with what was typed and the server's word next to its field."""
    form = await form_of(request, session, "runs:replay")
    typed = {f: str(form.get(f) or "") for f in _FIELDS}  # shown again as typed
    changes, limit, errors = _checked(typed)
    if not errors:
        try:
            started = await service.start_backtest(context(request), session.principal,
                                                   service.BacktestSpec(
                workflow_id=typed["workflow_id"].strip(), step_id=typed["step_id"].strip(),
                changes=changes, statuses=_STATUSES.get(typed["status"], ("completed",)),
                limit=limit, live_downstream=typed["live_downstream"] == "on"))
        except UnknownWorkflow as err:
            errors["workflow_id"] = err.message
        except UnknownBacktestStep as err:
            errors["step_id"] = err.message
        except InvalidOverride as err:
            errors["changes"] = err.message
        except (NoRunsToBacktest, RunNotBacktestable) as err:
            errors["status"] = err.message
        else:
            await _appeared(request, session, started.backtest_id)
            return RedirectResponse(f"/ui/backtests/{started.backtest_id}", status_code=303)
    return await _list(request, session, typed["workflow_id"].strip(), typed=typed,
                       errors=errors, status=422)


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
