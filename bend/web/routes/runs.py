"""The runs list: filters, keyset paging both ways, and a status stream for live rows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from bend.api.follow import SSE_MEDIA_TYPE
from bend.api.paging import after_cursor
from bend.web.errors import BadForm
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, need
from bend.web.streams import MAX_S, run_statuses
from projections.lag import describe, projection_lag, worth_showing
from projections.queries import runs as queries
from projections.queries import workflows as workflow_queries
from projections.queries.paging import encode_cursor

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/ui/runs", route_class=UiRoute, include_in_schema=False)

PAGE = 50
STATUSES = ("queued", "pending", "running", "completed", "failed", "cancelled")
MAX_STREAMED = 200
NEW_MAX = 100  # "100 new runs" at most: past that the count says 100+
# How old the runs page's reading of the projection lag may be (as the ops loop).
LAG_REFRESH_S = 5.0
LAG_TIMEOUT_S = 5.0


def parse_time(value: str | None, field: str) -> datetime | None:
    """A filter's time: ISO 8601, or a browser's `datetime-local` value read as UTC."""
    if not value or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadForm(f"{field} is not a time like 2025-01-31T14:00 (UTC): {value[:40]!r}") \
            from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _cursor_of(row: dict[str, Any]) -> str:
    return encode_cursor(row["requested_at"], row["run_id"])


@router.get("")
async def runs(request: Request, session: Ui, workflow: str | None = None,
               status: str | None = None, trigger: str | None = None,
               since: str | None = None, until: str | None = None,
               cursor: str | None = None, before: str | None = None) -> Response:
    """Runs of the caller's project, newest first, filtered, paged by keyset cursors."""
    need(session, "runs:read")
    ctx = context(request)
    project = session.principal.project
    if status and status not in STATUSES:
        raise BadForm(f"status {status!r} is not one of {', '.join(STATUSES)}")
    filters = {"workflow": (workflow or "").strip(), "status": status or "",
               "trigger": (trigger or "").strip(), "since": (since or "").strip(),
               "until": (until or "").strip()}
    back = after_cursor(before)
    rows = await queries.list_runs(
        ctx.pool, project, workflow_id=filters["workflow"] or None,
        statuses=[status] if status else None, trigger_id=filters["trigger"] or None,
        since=parse_time(since, "since"), until=parse_time(until, "until"),
        after=None if back else after_cursor(cursor), before=back, limit=PAGE + 1)
    kept = {k: v for k, v in filters.items() if v}
    if back is not None:
        more_newer = len(rows) > PAGE
        shown = rows[1:] if more_newer else rows
        prev_url = (f"?{urlencode({**kept, 'before': _cursor_of(shown[0])})}"
                    if more_newer and shown else None)
        next_url = f"?{urlencode({**kept, 'cursor': _cursor_of(shown[-1])})}" if shown else None
    else:
        shown = rows[:PAGE]
        next_url = (f"?{urlencode({**kept, 'cursor': _cursor_of(shown[-1])})}"
                    if len(rows) > PAGE else None)
        prev_url = (f"?{urlencode({**kept, 'before': _cursor_of(shown[0])})}"
                    if cursor and shown else None)
    workflows = await workflow_queries.list_workflows(ctx.pool, project, limit=200)
    names = {w["workflow_id"]: w["name"] for w in workflows}
    return page(request, "runs.html", {
        "behind": _behind(request, ctx),
        "rows": shown, "filters": filters, "kept": kept,
        "newest": _cursor_of(shown[0]) if shown else "", "statuses": STATUSES,
        "workflows": workflows,
        "names": names, "next_url": next_url, "prev_url": prev_url,
        "first_page": cursor is None and before is None,
    })


class _LagWatch:
    """How far the read models trail the log, read in the background at most every
    `LAG_REFRESH_S`, so no page waits on Kafka for it (a page shows the last reading)."""

    def __init__(self) -> None:
        self.shown: str | None = None  # what readers should be told, if anything
        self.read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None

    def current(self, ctx: Any) -> str | None:
        """The last reading; starts a new one when it is old."""
        if time.monotonic() - self.read_at > LAG_REFRESH_S and (
                self._reading is None or self._reading.done()):
            self._reading = asyncio.create_task(self._read(ctx))
        return self.shown

    async def _read(self, ctx: Any) -> None:
        try:
            lag = await asyncio.wait_for(projection_lag(ctx.pool, ctx.offsets, ctx.projected),
                                         LAG_TIMEOUT_S)
        except Exception as err:  # the lag is a hint, not the page: say nothing of it
            log.warning("projection_lag_unavailable", error=repr(err))
            self.shown = None
        else:
            self.shown = describe(lag) if worth_showing(lag) else None
        self.read_at = time.monotonic()


def _behind(request: Request, ctx: Any) -> str | None:
    watch = getattr(request.app.state, "projection_lag_watch", None)
    if watch is None:
        watch = request.app.state.projection_lag_watch = _LagWatch()
    return watch.current(ctx)


@router.get("/stream")
async def stream(request: Request, session: Ui,
                 run_id: Annotated[list[str] | None, Query()] = None,
                 newest: str | None = None, workflow: str | None = None,
                 status: str | None = None, trigger: str | None = None,
                 since: str | None = None, until: str | None = None,
                 follow_s: Annotated[float, Query(gt=0, le=3600)] = MAX_S) -> Response:
    """Server-sent `status` events whenever one of the listed runs changes status; with
    `newest` (the cursor of a first page's top row) and that page's filters, `new` events
    counting the runs that arrived since (up to 100)."""
    need(session, "runs:read")
    ctx = context(request)
    project = session.principal.project
    ids = list(dict.fromkeys(run_id or []))[:MAX_STREAMED]
    count_newer: Callable[[], Awaitable[int]] | None = None
    if newest is not None:
        top = after_cursor(newest) if newest else None
        if status and status not in STATUSES:
            raise BadForm(f"status {status!r} is not one of {', '.join(STATUSES)}")
        filters: dict[str, Any] = {
            "workflow_id": (workflow or "").strip() or None,
            "statuses": [status] if status else None,
            "trigger_id": (trigger or "").strip() or None,
            "since": parse_time(since, "since"), "until": parse_time(until, "until")}

        async def _newer() -> int:
            if top is None:  # the page was empty: every matching run is new
                rows = await queries.list_runs(ctx.pool, project, limit=NEW_MAX, **filters)
            else:
                rows = await queries.list_runs(ctx.pool, project, before=top, limit=NEW_MAX,
                                               **filters)
            return len(rows)

        count_newer = _newer
    return StreamingResponse(run_statuses(ctx, project, ids, newer=count_newer, max_s=follow_s),
                             media_type=SSE_MEDIA_TYPE,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
