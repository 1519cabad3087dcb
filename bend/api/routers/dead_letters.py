"""`/api/dead-letters`: list (filters, cursor paging), show one (payload decoded when it
decodes), re-drive one, or many by ids or filter.

Each caller sees only the dead letters of its project's runs; installation admins (admins of
BEND_PROJECT) also those of no known run (records of workflow or trigger topics, undecodable
keys). Others are unknown to it (404)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, StrictBool

from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.inputs import IsoTime, NulFree
from bend.api.paging import after_cursor
from bend.deadletters.service import DeadLetterFilter
from bend.security.roles import Principal
from bend.services import dead_letters as service
from projections.queries.paging import encode_cursor

__all__ = ["router"]

router = APIRouter(prefix="/api/dead-letters", tags=["dead-letters"],
                   dependencies=[Depends(consistent)],  # `?wait_for=` reads your re-drives
                   responses=problem_responses(403, 422, 503))

Reader = Annotated[Principal, Depends(permit("dead_letters:read"))]
Redriver = Annotated[Principal, Depends(permit("dead_letters:redrive"))]


class RedriveOne(BaseModel):
    """Re-drive options."""

    force: StrictBool = Field(default=False,
                              description="Send it again although it was re-driven")


class RedriveMany(BaseModel):
    """Which dead letters to re-drive: `event_ids`, or every one matching the filter."""

    event_ids: list[NulFree] | None = Field(default=None, max_length=1000)
    source_topic: NulFree | None = None
    error_type: NulFree | None = None
    since: IsoTime | None = None
    until: IsoTime | None = None
    force: StrictBool = Field(default=False, description="Include those re-driven before")


@router.get("")
async def list_letters(
    ctx: Context, principal: Reader,
    source_topic: str | None = None, error_type: str | None = None,
    since: IsoTime | None = None, until: IsoTime | None = None,
    redriven: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str | None = None,
) -> dict[str, Any]:
    """Dead letters, newest first, filtered by source topic, error type, time, re-driven."""
    rows = await service.list_letters(
        ctx, principal, DeadLetterFilter(source_topic, error_type, since, until, redriven),
        limit=limit, before=after_cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {"items": rows,
            "next_cursor": encode_cursor(datetime.fromisoformat(last["occurred_at"]),
                                         last["event_id"]) if more and last else None}


@router.get("/{event_id}", responses=problem_responses(404))
async def show_letter(ctx: Context, principal: Reader, event_id: str) -> dict[str, Any]:
    """One dead letter: reason, error type, source position, key, headers, payload."""
    return await service.get_letter(ctx, principal, event_id)


@router.post("/redrive", status_code=202, responses=problem_responses(404, 409))
async def redrive_letters(ctx: Context, principal: Redriver, body: RedriveMany) -> dict[str, Any]:
    """Re-drive the named dead letters, or all matching the filter (not yet re-driven unless
    forced)."""
    done = await service.redrive_letters(
        ctx, principal, event_ids=body.event_ids,
        filter=DeadLetterFilter(body.source_topic, body.error_type, body.since, body.until),
        force=body.force)
    return {"redriven": [r.as_dict() for r in done], "count": len(done)}


@router.post("/{event_id}/redrive", status_code=202, responses=problem_responses(404, 409))
async def redrive_letter(ctx: Context, principal: Redriver, event_id: str,
                         body: RedriveOne | None = None) -> dict[str, Any]:
    """Send the record back to its source topic with its key and headers; recorded as
    DeadLetterRedriven (`position`: pass it as `?wait_for=` to read the marked row)."""
    done = await service.redrive_letter(ctx, principal, event_id,
                                        force=(body or RedriveOne()).force)
    return done.as_dict()
