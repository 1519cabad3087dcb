"""Triggers: /api/workflows/{workflow_id}/triggers, /api/triggers/{trigger_id}, /api/webhooks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from bend.api import triggering
from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.models.common import LogPosition
from bend.api.models.triggers import (
    BackfillAccepted, BackfilledRun, BackfillRequest, ReplayAccepted, ReplayRequest,
    TriggerErrorList, TriggerErrorView, TriggerList, TriggerState, TriggerView, TriggerWrite,
    TriggerWritten, WebhookList, WebhookView,
)
from bend.api.triggering import (
    InvalidBackfill, TriggerTypeMismatch, UnknownTrigger, WebhookPathTaken,
)
from bend.core.events import Event
from bend.core.triggers.errors import BackfillTooLarge, InvalidTimeRange
from bend.core.triggers.schedules import backfill, dedupe_key, next_due
from bend.core.triggers import KafkaTrigger, ScheduleTrigger, WebhookTrigger, parse_trigger
from bend.kafka.position import Position
from bend.security.roles import Principal
from bend.services import workflows
from bend.triggering import events as trigger_events
from projections.queries import triggers as queries

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["triggers"], dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 422, 503))

Reader = Annotated[Principal, Depends(permit("triggers:read"))]
Writer = Annotated[Principal, Depends(permit("triggers:write"))]

_WAIT_S = 10.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _hook_url(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/webhooks/{path}"


def _state(row: dict[str, Any], now: datetime) -> TriggerState:
    upcoming = None
    if row["enabled"] and row["trigger_type"] == "schedule":
        trigger = parse_trigger(row["definition"])
        if isinstance(trigger, ScheduleTrigger):
            upcoming = next_due(trigger.schedule, row["last_due_at"], now)
    return TriggerState(fire_count=row["firings"], first_fired_at=row["first_fired_at"],
                        last_fired_at=row["last_fired_at"], last_due_at=row["last_due_at"],
                        next_due_at=upcoming, last_error=row["last_error"],
                        last_error_at=row["last_error_at"], error_count=row["error_count"])


def _view(request: Request, row: dict[str, Any], now: datetime) -> TriggerView:
    path = row["webhook_path"]
    return TriggerView(trigger_id=row["trigger_id"], workflow_id=row["workflow_id"],
                       type=row["trigger_type"], enabled=row["enabled"],
                       definition=row["definition"], registered_at=row["registered_at"],
                       updated_at=row["updated_at"], state=_state(row, now),
                       webhook_url=_hook_url(request, path) if path else None)


async def _trigger(ctx: Context, principal: Principal, trigger_id: str) -> dict[str, Any]:
    row = await queries.get_trigger(ctx.pool, principal.project, trigger_id)
    if row is None:
        raise UnknownTrigger(trigger_id)
    return row


@contextlib.asynccontextmanager
async def _path_claimed(ctx: Context, trigger: Any, trigger_id: str) -> AsyncIterator[None]:
    """For a webhook: hold its path's lock (until the read models show the event sent inside)
    and refuse a path another trigger listens on. Other triggers pass through."""
    if not isinstance(trigger, WebhookTrigger):
        yield
        return
    conn: asyncpg.Connection
    async with ctx.pool.acquire() as conn, conn.transaction():
        # Paths are global (/webhooks/<path>); API processes take turns to claim one.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           f"bend.webhook.path:{trigger.path}")
        holder = await queries.webhook_by_path(conn, trigger.path)
        if holder is not None and holder["trigger_id"] != trigger_id:
            raise WebhookPathTaken(trigger.path)
        yield


async def _send(ctx: Context, response: Response, event: Event, *, wait: bool) -> LogPosition:
    position: Position = await ctx.producer.send(event)
    if wait:  # the next claimant of the path must see this one
        await ctx.watcher.wait_for([position], timeout_s=_WAIT_S)
    response.headers["X-Bend-Position"] = position.token
    return LogPosition.of(position)


@router.get("/workflows/{workflow_id}/triggers", response_model=TriggerList,
            responses=problem_responses(404))
async def list_triggers(request: Request, ctx: Context, principal: Reader,
                        workflow_id: str) -> TriggerList:
    """The workflow's triggers with their state, oldest first."""
    await workflows.get_workflow(ctx, principal, workflow_id)
    now = _now()
    rows = await queries.list_triggers(ctx.pool, principal.project, workflow_id)
    return TriggerList(items=[_view(request, r, now) for r in rows])


@router.post("/workflows/{workflow_id}/triggers", status_code=201, response_model=TriggerWritten,
             responses=problem_responses(404, 409))
async def create_trigger(body: TriggerWrite, request: Request, response: Response, ctx: Context,
                         principal: Writer, workflow_id: str) -> TriggerWritten:
    """Add a trigger to the workflow (422 lists every problem of its definition)."""
    workflow = await workflows.get_workflow(ctx, principal, workflow_id, live=True)
    trigger, definition = triggering.accepted(body.definition)
    trigger_id = str(uuid.uuid4())
    event: Event = trigger_events.registered(trigger_id, definition, workflow_id,
                                         workflow["latest_version"], ctx.settings.tenant,
                                         principal, _now())
    async with _path_claimed(ctx, trigger, trigger_id):
        position = await _send(ctx, response, event,
                               wait=isinstance(trigger, WebhookTrigger) or not body.enabled)
        if not body.enabled:  # registered enabled; disabling is the next event
            event = trigger_events.updated({"trigger_id": trigger_id, "workflow_id": workflow_id},
                                       definition, False, ctx.settings.tenant, principal, _now())
            position = await _send(ctx, response, event, wait=False)
    response.headers["Location"] = f"/api/triggers/{trigger_id}"
    path = trigger.path if isinstance(trigger, WebhookTrigger) else None
    return TriggerWritten(trigger_id=trigger_id, workflow_id=workflow_id, type=trigger.type,
                          enabled=body.enabled, changed=True, position=position,
                          webhook_url=_hook_url(request, path) if path else None)


@router.get("/triggers/{trigger_id}", response_model=TriggerView,
            responses=problem_responses(404))
async def get_trigger(request: Request, ctx: Context, principal: Reader,
                      trigger_id: str) -> TriggerView:
    """A trigger: definition, enabled, last and next firing, count and last error."""
    return _view(request, await _trigger(ctx, principal, trigger_id), _now())


@router.put("/triggers/{trigger_id}", response_model=TriggerWritten,
            responses=problem_responses(404, 409))
async def update_trigger(body: TriggerWrite, request: Request, response: Response, ctx: Context,
                         principal: Writer, trigger_id: str) -> TriggerWritten:
    """Replace the trigger's definition or enable/disable it (no event if nothing changes)."""
    row = await _trigger(ctx, principal, trigger_id)
    trigger, definition = triggering.accepted(body.definition)
    path = trigger.path if isinstance(trigger, WebhookTrigger) else None
    written = TriggerWritten(trigger_id=trigger_id, workflow_id=row["workflow_id"],
                             type=trigger.type, enabled=body.enabled, changed=False,
                             webhook_url=_hook_url(request, path) if path else None)
    if definition == row["definition"] and body.enabled == row["enabled"]:
        return written
    event = trigger_events.updated(row, definition, body.enabled, ctx.settings.tenant, principal,
                               _now())
    async with _path_claimed(ctx, trigger, trigger_id):
        moved = path is not None and path != row["webhook_path"]
        position = await _send(ctx, response, event, wait=moved)
    return written.model_copy(update={"changed": True, "position": position})


@router.delete("/triggers/{trigger_id}", response_model=TriggerWritten,
               responses=problem_responses(404))
async def delete_trigger(response: Response, ctx: Context, principal: Writer,
                         trigger_id: str) -> TriggerWritten:
    """Remove the trigger; it fires no more (its firings stay in the log and the audit)."""
    row = await _trigger(ctx, principal, trigger_id)
    event = trigger_events.removed(row, ctx.settings.tenant, principal, _now())
    position = await _send(ctx, response, event, wait=False)
    return TriggerWritten(trigger_id=trigger_id, workflow_id=row["workflow_id"],
                          type=row["trigger_type"], enabled=False, changed=True, removed=True,
                          position=position)


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
    await _trigger(ctx, principal, trigger_id)
    rows = await queries.list_errors(ctx.pool, trigger_id, limit)
    return TriggerErrorList(items=[TriggerErrorView(**r) for r in rows])


@router.post("/triggers/{trigger_id}/backfill", status_code=202,
             response_model=BackfillAccepted, responses=problem_responses(404, 409))
async def backfill_trigger(body: BackfillRequest, response: Response, ctx: Context,
                           principal: Writer, trigger_id: str) -> BackfillAccepted:
    """Fire a schedule's due times in [start, end) that have not fired yet, oldest first.

    Each due time fires once whoever fires it (its key and run id are the scheduler's); one
    fired already is reported as `already_fired` and not sent again.
    """
    row = await _trigger(ctx, principal, trigger_id)
    trigger = parse_trigger(row["definition"])
    if not isinstance(trigger, ScheduleTrigger):
        raise TriggerTypeMismatch(trigger_id, row["trigger_type"], "schedule", "be backfilled")
    now = _now()
    try:
        due = backfill(trigger.schedule, body.start, body.end, body.max_runs, now=now)
    except (InvalidTimeRange, BackfillTooLarge) as exc:
        raise InvalidBackfill(str(exc)) from None
    version, definition = await triggering.pinned(ctx.pool, row)
    keys = [dedupe_key(trigger_id, at) for at in due]
    before = await queries.fired_keys(ctx.pool, trigger_id, keys)
    runs, batch = [], []
    for at, key in zip(due, keys, strict=False):
        fired, start = trigger_events.firing(row, key, version, definition, trigger.input, now,
                                             at)
        if key in before:
            runs.append(BackfilledRun(due_at=at, run_id=before[key] or fired.run_id or "",
                                      status="already_fired"))
            continue
        batch += [fired, start]
        runs.append(BackfilledRun(due_at=at, run_id=start.run_id or "", status="started"))
    if batch:
        positions = await ctx.producer.send_many(batch)
        response.headers["X-Bend-Position"] = positions[-1].token
    started = sum(r.status == "started" for r in runs)
    return BackfillAccepted(trigger_id=trigger_id, started=started,
                            already_fired=len(runs) - started, runs=runs)


@router.post("/triggers/{trigger_id}/replay", status_code=202, response_model=ReplayAccepted,
             responses=problem_responses(404, 409))
async def replay_trigger(body: ReplayRequest, response: Response, ctx: Context,
                         principal: Writer, trigger_id: str) -> ReplayAccepted:
    """Re-read a Kafka trigger's topic from an offset or a time.

    Records that fired before start nothing unless `force` is set (then each fires once more,
    as a new run, per replay); the others fire as they would have.
    """
    row = await _trigger(ctx, principal, trigger_id)
    if not isinstance(parse_trigger(row["definition"]), KafkaTrigger):
        raise TriggerTypeMismatch(trigger_id, row["trigger_type"], "kafka", "be replayed")
    event = trigger_events.replay_requested(
        row, str(uuid.uuid4()), partition=body.partition, from_offset=body.from_offset,
        from_time=body.from_time, force=body.force, principal=principal, now=_now())
    position = await _send(ctx, response, event, wait=False)
    return ReplayAccepted(trigger_id=trigger_id, replay_id=event.replay_id, position=position)
