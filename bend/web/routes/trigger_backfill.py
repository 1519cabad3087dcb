"""A schedule trigger's backfill dialog: fire its due times in a past range that have not fired
yet, and see the run each started (or had started). Through bend.services.triggers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request, Response

from bend.services import triggers as service
from bend.services.trigger_checks import InvalidBackfill
from bend.web.errors import BadForm
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.session import Session

__all__ = ["router"]

router = APIRouter(prefix="/ui/triggers", route_class=UiRoute, include_in_schema=False)

MAX_RUNS = 1000  # the API's BACKFILL_CAP


def _when(text: str) -> datetime:
    """A form's time: ISO 8601, or the browser's datetime-local, read as UTC without a zone."""
    at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


async def _schedule(request: Request, session: Session, trigger_id: str) -> dict[str, Any]:
    row = await service.get_trigger(context(request), session.principal, trigger_id)
    if row["trigger_type"] != "schedule":
        raise BadForm(f"trigger {trigger_id} is a {row['trigger_type']} trigger; only schedule "
                      "triggers are backfilled")
    return row


def _dialog(request: Request, row: dict[str, Any], typed: dict[str, str],
            errors: dict[str, str], status: int = 200) -> Response:
    return page(request, "trigger_backfill.html", {"row": row, "typed": typed,
                                                   "errors": errors}, status=status)


@router.get("/{trigger_id}/backfill")
async def dialog(request: Request, session: Ui, trigger_id: str) -> Response:
    """The backfill form: a range of past time (UTC) and the most runs it may start."""
    need(session, "triggers:write")
    row = await _schedule(request, session, trigger_id)
    return _dialog(request, row, {"start": "", "end": "", "max_runs": "100"}, {})


@router.post("/{trigger_id}/backfill")
async def run_backfill(request: Request, session: Ui, trigger_id: str) -> Response:
    """Fire the range's due times not fired yet; the result lists each due time's run."""
    form = await form_of(request, session, "triggers:write")
    row = await _schedule(request, session, trigger_id)
    typed = {k: str(form.get(k) or "").strip() for k in ("start", "end", "max_runs")}
    errors: dict[str, str] = {}
    times: dict[str, datetime] = {}
    for name in ("start", "end"):
        try:
            times[name] = _when(typed[name])
        except ValueError:
            errors[name] = "enter a time like 2026-01-31T09:00 (UTC)"
    try:
        max_runs = int(typed["max_runs"] or "100")
        if not 1 <= max_runs <= MAX_RUNS:
            raise ValueError
    except ValueError:
        errors["max_runs"] = f"enter a whole number from 1 to {MAX_RUNS}"
        max_runs = 0
    if not errors:
        try:
            done = await service.backfill_trigger(context(request), session.principal,
                                                  trigger_id, times["start"], times["end"],
                                                  max_runs)
        except InvalidBackfill as err:
            errors["end"] = err.message
        else:
            return page(request, "trigger_backfilled.html", {"row": row, "done": done})
    return _dialog(request, row, typed, errors, status=422)
