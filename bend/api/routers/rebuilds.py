"""`POST /api/replay/projections` (rebuild the read model and switch it in; admin) and
`GET /api/replay/projections/{rebuild_id}` (its phase, speed, progress and differences).

A rebuild runs as a task of the API process that accepted it, which keeps its status; the API
keeps serving from the live schema until the switch, and from the rebuilt one after.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from bend.api.deps import Context, permit
from bend.api.errors import problem_responses
from bend.core.errors import BendError
from bend.replay.projections import RebuildStatus, new_status, rebuild_projections
from bend.security.roles import Principal

__all__ = ["UnknownRebuild", "router"]

router = APIRouter(prefix="/api/replay", tags=["replay"],
                   responses=problem_responses(403, 422, 503))

Admin = Annotated[Principal, Depends(permit("projections:rebuild"))]


class UnknownRebuild(BendError):
    """No rebuild has this id in this API process."""

    code = "unknown_rebuild"
    status = 404

    def __init__(self, rebuild_id: str) -> None:
        super().__init__(f"no rebuild {rebuild_id} was started by this API process; start one "
                         "with POST /api/replay/projections")
        self.rebuild_id = rebuild_id


class RebuildRequest(BaseModel):
    """What to rebuild and how strict the switch is."""

    only: str | None = Field(default=None, description="One projection's tables (e.g. `runs`); "
                             "null: the whole read model")
    accept_differences: bool = Field(default=False, description="Switch even where the rebuilt "
                                     "tables differ from the live ones")
    drop_retired: bool = Field(default=False, description="Drop the replaced tables after the "
                               "switch (kept by default, for rollback)")


def _jobs(request: Request) -> dict[str, tuple[RebuildStatus, asyncio.Task[Any]]]:
    jobs = getattr(request.app.state, "rebuilds", None)
    if jobs is None:
        jobs = request.app.state.rebuilds = {}
    return jobs


@router.post("/projections", status_code=202, responses=problem_responses(409))
async def start_rebuild(ctx: Context, principal: Admin, request: Request,
                        body: RebuildRequest | None = None) -> dict[str, Any]:
    """Start rebuilding the read model from the log's start; poll its status."""
    body = body or RebuildRequest()
    jobs = _jobs(request)
    running = [s for s, _ in jobs.values() if not s.done]
    if running:
        raise RebuildInProgress(running[0].rebuild_id)
    status = new_status(ctx.settings, body.only)

    async def _run() -> None:
        try:
            await rebuild_projections(ctx.settings, status,
                                      accept_differences=body.accept_differences,
                                      drop_retired=body.drop_retired)
        except Exception:  # noqa: BLE001 - the status keeps what went wrong
            pass
    jobs[status.rebuild_id] = (status, asyncio.create_task(_run(), name="rebuild"))
    return status.as_dict()


@router.get("/projections/{rebuild_id}", responses=problem_responses(404))
async def rebuild_status(principal: Admin, request: Request, rebuild_id: str) -> dict[str, Any]:
    """The rebuild's phase, events/s, progress, and the tables that differ."""
    job = _jobs(request).get(rebuild_id)
    if job is None:
        raise UnknownRebuild(rebuild_id)
    return job[0].as_dict()


class RebuildInProgress(BendError):
    """Another rebuild of this API process has not ended."""

    code = "rebuild_in_progress"
    status = 409

    def __init__(self, rebuild_id: str) -> None:
        super().__init__(f"rebuild {rebuild_id} is still running; wait for it "
                         f"(GET /api/replay/projections/{rebuild_id})")
        self.rebuild_id = rebuild_id
