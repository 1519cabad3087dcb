"""/api/executions: runs, their steps, events, logs and graph; cancel."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.follow import MAX_SEQ, SSE_MEDIA_TYPE, follow_run, resume_after
from bend.api.graph import run_graph
from bend.api.inputs import IsoTime
from bend.api.logs import LEVELS, log_line
from bend.api.models.common import LogPosition
from bend.api.models.executions import (
    CancelAccepted, CancelRequest, EventPage, EventView, Graph, LogPage, RunDetail, RunPage,
    RunSummary, StepView, UsageView,
)
from bend.api.paging import after_cursor, next_cursor
from bend.api.tokens import follow_tokens
from bend.explain import Explanation, explain_run
from bend.kafka.position import Position
from bend.security.roles import Principal
from bend.services import runs as service
from projections.queries import runs as queries

__all__ = ["resume_after", "router"]

router = APIRouter(prefix="/api/executions", tags=["executions"],
                   dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("runs:read"))]
Canceller = Annotated[Principal, Depends(permit("runs:cancel"))]
AfterSeq = Annotated[int, Query(ge=0, le=MAX_SEQ, description="Only events with a higher seq")]
LastEventId = Annotated[str | None, Header(
    description="Sent by reconnecting SSE clients: resume after this seq")]
Follow = Annotated[bool, Query(description="Stream as server-sent events until the run ends")]
FollowFor = Annotated[float, Query(gt=0, le=3600, description="Longest a stream stays open, s")]

_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, SSE_MEDIA_TYPE: {}},
          "description": "JSON, or server-sent events with `?follow=true`"}}


async def _run(ctx: Context, principal: Principal, run_id: str) -> dict[str, Any]:
    return await service.get_run(ctx, principal, run_id)


@router.get("", response_model=RunPage)
async def list_executions(
    ctx: Context, principal: Reader,
    workflow_id: str | None = None,
    status: Annotated[list[str] | None, Query(description="queued, pending, running, "
                                                          "completed, failed, cancelled")] = None,
    since: Annotated[IsoTime | None, Query(description="Requested at or after")] = None,
    until: Annotated[IsoTime | None, Query(description="Requested before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
    backtests: Annotated[bool, Query(description="Include backtest runs (left out by "
                                                 "default)")] = False,
    backtest_id: Annotated[str | None, Query(description="Only this backtest's runs")] = None,
) -> RunPage:
    """Runs of the caller's project, newest first, filtered by workflow, status and time."""
    rows = await queries.list_runs(ctx.pool, principal.project, workflow_id=workflow_id,
                                   statuses=status, since=since, until=until,
                                   after=after_cursor(cursor), limit=limit + 1,
                                   include_backtests=backtests, backtest_id=backtest_id)
    return RunPage(items=[RunSummary.model_validate(r) for r in rows[:limit]],
                   next_cursor=next_cursor(rows, limit, "requested_at", "run_id"))


@router.get("/{run_id}", response_model=RunDetail, responses=problem_responses(404))
async def get_execution(ctx: Context, principal: Reader, run_id: str) -> RunDetail:
    """A run: status, input, output, each step's latest attempt and LLM usage."""
    run = await _run(ctx, principal, run_id)
    steps = await queries.steps(ctx.pool, run_id)
    usage = await queries.usage(ctx.pool, run_id)
    now = datetime.now(timezone.utc)
    return RunDetail(**run, steps=[StepView.of(s, now) for s in steps],
                     usage=[UsageView.model_validate(u) for u in usage])


@router.post("/{run_id}/cancel", status_code=202, response_model=CancelAccepted,
             responses=problem_responses(404, 409))
async def cancel_execution(response: Response, ctx: Context, principal: Canceller, run_id: str,
                           body: CancelRequest | None = None) -> CancelAccepted:
    """Ask the orchestrator to cancel the run and its open steps."""
    position = await service.cancel_run(ctx, principal, run_id, (body or CancelRequest()).reason)
    response.headers["X-Bend-Position"] = position.token
    return CancelAccepted(run_id=run_id, position=LogPosition.of(position))


def _event_view(row: dict[str, Any]) -> EventView:
    position = Position(row["topic"], row["partition"], row["offset"])
    return EventView(**{k: row[k] for k in ("seq", "event_id", "event_type", "step_id",
                                            "occurred_at", "payload")},
                     position=LogPosition.of(position))


@router.get("/{run_id}/explain", response_model=Explanation,
            responses=problem_responses(404))
async def explain_execution(ctx: Context, principal: Reader, run_id: str) -> Explanation:
    """Why the run is not moving: timers, children, executors, lag, circuits, dead letters."""
    await _run(ctx, principal, run_id)
    return await explain_run(ctx.settings, run_id, pool=ctx.pool)


@router.get("/{run_id}/events", response_model=EventPage,
            responses={**problem_responses(404), **_STREAM})
async def get_execution_events(ctx: Context, principal: Reader, run_id: str,
                               after_seq: AfterSeq = 0, follow: Follow = False,
                               limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                               follow_s: FollowFor = 300.0,
                               last_event_id: LastEventId = None) -> Any:
    """The run's event log in seq order; `follow=true` streams it as server-sent events."""
    await _run(ctx, principal, run_id)
    after_seq = resume_after(after_seq, last_event_id)
    if follow:
        return StreamingResponse(follow_run(ctx, run_id, after_seq, _event_view, max_s=follow_s),
                                 media_type=SSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})
    rows = await queries.events(ctx.pool, run_id, after_seq=after_seq, limit=limit)
    return EventPage(items=[_event_view(r) for r in rows],
                     next_after_seq=rows[-1]["seq"] if rows else after_seq)


@router.get("/{run_id}/logs", response_model=LogPage,
            responses={**problem_responses(404), **_STREAM})
async def get_execution_logs(ctx: Context, principal: Reader, run_id: str,
                             after_seq: AfterSeq = 0, follow: Follow = False,
                             level: Annotated[str, Query(pattern="^(info|warning|error)$",
                                                         description="The lowest level shown")]
                             = "info",
                             step_id: str | None = None,
                             limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                             follow_s: FollowFor = 300.0,
                             last_event_id: LastEventId = None) -> Any:
    """The run's log lines (one per event) in seq order; `follow=true` streams them."""
    await _run(ctx, principal, run_id)
    after_seq = resume_after(after_seq, last_event_id)
    if follow:
        return StreamingResponse(follow_run(ctx, run_id, after_seq, log_line, max_s=follow_s),
                                 media_type=SSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})
    rows = await queries.events(ctx.pool, run_id, after_seq=after_seq, limit=limit)
    lowest = LEVELS.index(level)
    lines = [line for line in map(log_line, rows)
             if LEVELS.index(line.level) >= lowest and (step_id is None or
                                                        line.step_id == step_id)]
    return LogPage(items=lines, next_after_seq=rows[-1]["seq"] if rows else after_seq)


@router.get("/{run_id}/tokens", response_class=StreamingResponse,
            responses={**problem_responses(404),
                       200: {"content": {SSE_MEDIA_TYPE: {}},
                             "description": "`tokens` frames, then `end` or `timeout`"}})
async def get_execution_tokens(ctx: Context, principal: Reader, run_id: str,
                               step_id: str | None = None,
                               follow_s: FollowFor = 300.0) -> StreamingResponse:
    """An agent's model text as it streams (a side channel, not the run log: best effort, from
    now on), until the step (or without `step_id`, the run) ends; server-sent events."""
    await _run(ctx, principal, run_id)
    return StreamingResponse(follow_tokens(ctx, run_id, step_id, max_s=follow_s),
                             media_type=SSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.get("/{run_id}/graph", response_model=Graph, responses=problem_responses(404))
async def get_execution_graph(ctx: Context, principal: Reader, run_id: str) -> Graph:
    """The run's steps as nodes with their state and their dependencies as edges."""
    run = await _run(ctx, principal, run_id)
    return run_graph(run, await queries.steps(ctx.pool, run_id))
