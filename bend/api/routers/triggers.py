"""Triggers: /api/workflows/{workflow_id}/triggers, /api/triggers/{trigger_id}, /api/webhooks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.models.common import LogPosition
from bend.api.models.triggers import (
    BackfillAccepted, BackfilledRun, BackfillRequest, NextFireTimes, ReplayAccepted, ReplayRequest,
    TriggerErrorList, TriggerErrorView, TriggerList, TriggerState, TriggerView, TriggerWrite,
    TriggerWritten, WebhookList, WebhookView,
)
from bend.core.triggers import parse_trigger
from bend.security.roles import Principal
from bend.services import triggers as service
from projections.queries import triggers as queries

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["triggers"], dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 422, 503))

Reader = Annotated[Principal, Depends(permit("triggers:read"))]
Writer = Annotated[Principal, Depends(permit("triggers:write"))]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _hook_url(request: Request, path: str) -> str:
    return service.webhook_url(str(request.base_url), path)


def _state(row: dict[str, Any], now: datetime) -> TriggerState:
    upcoming = service.next_fire_times(row, now, 1)
    return TriggerState(fire_count=row["firings"], first_fired_at=row["first_fired_at"],
                        last_fired_at=row["last_fired_at"], last_due_at=row["last_due_at"],
                        next_due_at=upcoming[0] if upcoming else None,
                        last_error=row["last_error"], last_error_at=row["last_error_at"],
                        error_count=row["error_count"])


def _view(request: Request, row: dict[str, Any], now: datetime) -> TriggerView:
    path = row["webhook_path"]
    return TriggerView(trigger_id=row["trigger_id"], workflow_id=row["workflow_id"],
                       type=row["trigger_type"], enabled=row["enabled"],
                       definition=row["definition"], registered_at=row["registered_at"],
                       updated_at=row["updated_at"], state=_state(row, now),
                       webhook_url=_hook_url(request, path) if path else None)


def _written(request: Request, response: Response,
             written: service.TriggerWritten) -> TriggerWritten:
    path = written.webhook_path
    position = None
    if written.position is not None:
        response.headers["X-Bend-Position"] = written.position.token
        position = LogPosition.of(written.position)
    return TriggerWritten(trigger_id=written.trigger_id, workflow_id=written.workflow_id,
                          type=written.type, enabled=written.enabled, changed=written.changed,
                          removed=written.removed, position=position,
                          webhook_url=_hook_url(request, path) if path else None)


@router.get("/workflows/{workflow_id}/triggers", response_model=TriggerList,
            responses=problem_responses(404))
async def list_triggers(request: Request, ctx: Context, principal: Reader,
                        workflow_id: str) -> TriggerList:
    """The workflow's triggers with their state, oldest first."""
    now = _now()
    rows = await service.list_triggers(ctx, principal, workflow_id)
    return TriggerList(items=[_view(request, r, now) for r in rows])


@router.post("/workflows/{workflow_id}/triggers", status_code=201, response_model=TriggerWritten,
             responses=problem_responses(404, 409))
async def create_trigger(body: TriggerWrite, request: Request, response: Response, ctx: Context,
                         principal: Writer, workflow_id: str) -> TriggerWritten:
    """Add a trigger to the workflow (422 lists every problem of its definition)."""
    written = await service.create_trigger(ctx, principal, workflow_id, body.definition,
                                           enabled=body.enabled)
    response.headers["Location"] = f"/api/triggers/{written.trigger_id}"
    return _written(request, response, written)


@router.get("/triggers/{trigger_id}", response_model=TriggerView,
            responses=problem_responses(404))
async def get_trigger(request: Request, ctx: Context, principal: Reader,
                      trigger_id: str) -> TriggerView:
    """A trigger: definition, enabled, last and next firing, count and last error."""
    return _view(request, await service.get_trigger(ctx, principal, trigger_id), _now())


@router.get("/triggers/{trigger_id}/next", response_model=NextFireTimes,
            responses=problem_responses(404))
async def next_fire_times(ctx: Context, principal: Reader, trigger_id: str,
                          count: Annotated[int, Query(ge=1, le=100)] = 5) -> NextFireTimes:
    """A schedule's next due times, as its scheduler fires them (none if disabled or paused)."""
    row = await service.get_trigger(ctx, principal, trigger_id)
    return NextFireTimes(trigger_id=trigger_id,
                         items=service.next_fire_times(row, _now(), count))


@router.put("/triggers/{trigger_id}", response_model=TriggerWritten,
            responses=problem_responses(404, 409))
async def update_trigger(body: TriggerWrite, request: Request, response: Response, ctx: Context,
                         principal: Writer, trigger_id: str) -> TriggerWritten:
    """Replace the trigger's definition or enable/disable it (no event if nothing changes)."""
    written = await service.update_trigger(ctx, principal, trigger_id, body.definition,
                                           body.enabled)
    return _written(request, response, written)


@router.delete("/triggers/{trigger_id}", response_model=TriggerWritten,
               responses=problem_responses(404))
async def delete_trigger(request: Request, response: Response, ctx: Context, principal: Writer,
                         trigger_id: str) -> TriggerWritten:
    """Remove the trigger; it fires no more (its firings stay in the log and the audit)."""
    return _written(request, response, await service.delete_trigger(ctx, principal, trigger_id))


@router.get("/webhooks", response_model=WebhookList)
async def list_webhooks(request: Request, ctx: Context, principal: Reader) -> WebhookList:
    """The project's webhook triggers with the URL each listens on."""
    items = []
    for row in await queries.list_webhooks(ctx.pool, principal.project):
        hook = parse_trigger(row["definition"])
        items.append(WebhookView(trigger_id=row["trigger_id"], workflow_id=row["workflow_id"],
                                 path=hook.path, url=_hook_url(request, hook.path),
                                 enabled=row["enabled"], secret_name=hook.secret_name,
                                 required_headers=hook.required_headers))
    return WebhookList(items=items)


@router.get("/triggers/{trigger_id}/errors", response_model=TriggerErrorList,
            responses=problem_responses(404))
async def list_trigger_errors(ctx: Context, principal: Reader, trigger_id: str,
                              limit: Annotated[int, Query(ge=1, le=500)] = 50
                              ) -> TriggerErrorList:
    """The trigger's latest failures (TriggerFailed), newest first."""
    rows = await service.recent_errors(ctx, principal, trigger_id, limit)
    return TriggerErrorList(items=[TriggerErrorView(**r) for r in rows])


@router.post("/triggers/{trigger_id}/backfill", status_code=202,
             response_model=BackfillAccepted, responses=problem_responses(404, 409))
async def backfill_trigger(body: BackfillRequest, response: Response, ctx: Context,
                           principal: Writer, trigger_id: str) -> BackfillAccepted:
    """Fire a schedule's due times in [start, end) that have not fired yet, oldest first.

    Each due time fires once whoever fires it (its key and run id are the scheduler's); one
    fired already is reported as `already_fired` and not sent again.
    """
    done = await service.backfill_trigger(ctx, principal, trigger_id, body.start, body.end,
                                          body.max_runs)
    if done.position is not None:
        response.headers["X-Bend-Position"] = done.position.token
    return BackfillAccepted(
        trigger_id=trigger_id, started=done.started,
        already_fired=len(done.runs) - done.started,
        runs=[BackfilledRun(due_at=at, run_id=run_id, status=status)
              for at, run_id, status in done.runs])


@router.post("/triggers/{trigger_id}/replay", status_code=202, response_model=ReplayAccepted,
             responses=problem_responses(404, 409))
async def replay_trigger(body: ReplayRequest, response: Response, ctx: Context,
                         principal: Writer, trigger_id: str) -> ReplayAccepted:
    """Re-read a Kafka trigger's topic from an offset or a time.

    Records that fired before start nothing unless `force` is set (then each fires once more,
    as a new run, per replay); the others fire as they would have.
    """
    asked = await service.replay_trigger(ctx, principal, trigger_id, partition=body.partition,
                                         from_offset=body.from_offset,
                                         from_time=body.from_time, force=body.force)
    response.headers["X-Bend-Position"] = asked.position.token
    return ReplayAccepted(trigger_id=trigger_id, replay_id=asked.replay_id,
                          position=LogPosition.of(asked.position))
