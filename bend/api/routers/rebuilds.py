"""`POST /api/replay/projections` (rebuild the read model and switch it in; admin) and
`GET /api/replay/projections/{rebuild_id}` (its phase, speed, progress and differences).

A rebuild runs as a task of the API process that accepted it; that process writes its status to
Postgres (`projection_rebuilds`) as it goes, so every replica behind the load balancer answers
for it, and refuses a second rebuild while one runs anywhere. A rebuild whose process died stops
beating and is reported `abandoned`, with what to do. The API keeps serving from the live schema
until the switch, and from the rebuilt one after.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StrictBool

from bend.api.deps import Context, permit
from bend.api.errors import problem_responses
from bend.api.problems import NotInstallationAdmin
from bend.core.errors import BendError
from bend.replay.projections import (
    RebuildInProgress, RebuildRecorder, new_status, rebuild_projections,
)
from bend.security.roles import Principal, installation_admin
import contextlib

__all__ = ["RebuildInProgress", "UnknownRebuild", "router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/replay", tags=["replay"],
                   responses=problem_responses(403, 422, 503))

Admin = Annotated[Principal, Depends(permit("projections:rebuild"))]


def _installation(ctx: Context, principal: Principal) -> None:
    """A rebuild is the installation's, not a project's: only admins of the installation's own
    project (`BEND_PROJECT`) start or read one; to others' admins none exists."""
    if not installation_admin(principal, ctx.settings.project):
        raise NotInstallationAdmin(principal.project, "rebuild the read models")


class UnknownRebuild(BendError):
    """No rebuild of this read model has this id."""

    status = 404

    def __init__(self, rebuild_id: str) -> None:
        super().__init__(f"no rebuild {rebuild_id} is recorded for this read model; start one "
                         "with POST /api/replay/projections")
        self.rebuild_id = rebuild_id


class RebuildRequest(BaseModel):
    """What to rebuild and how strict the switch is."""

    only: str | None = Field(default=None, description="One projection's tables (e.g. `runs`); "
                             "null: the whole read model")
    accept_differences: StrictBool = Field(
        default=False, description="Switch even where the rebuilt "
                                     "tables differ from the live ones")
    drop_retired: StrictBool = Field(
        default=False, description="Drop the replaced tables after the "
                               "switch (kept by default, for rollback)")


def _tasks(request: Request) -> set[asyncio.Task[Any]]:
    """The rebuilds this process runs (held so they are not garbage-collected mid-run)."""
    tasks = getattr(request.app.state, "rebuild_tasks", None)
    if tasks is None:
        tasks = request.app.state.rebuild_tasks = set()
    return tasks


@router.post("/projections", status_code=202, responses=problem_responses(409))
async def start_rebuild(ctx: Context, principal: Admin, request: Request,
                        body: RebuildRequest | None = None) -> dict[str, Any]:
    """Start rebuilding the read model from the log's start; poll its status on any replica
    (409 while another rebuild runs on any replica)."""
    _installation(ctx, principal)
    body = body or RebuildRequest()
    status = new_status(ctx.settings, body.only)
    recorder = RebuildRecorder.of(ctx.pool, ctx.settings)
    await recorder.claim(status)

    async def _run() -> None:
        with contextlib.suppress(Exception):
            await rebuild_projections(ctx.settings, status, recorder=recorder,
                                      accept_differences=body.accept_differences,
                                      drop_retired=body.drop_retired)

    tasks = _tasks(request)
    task = asyncio.create_task(_run(), name=f"rebuild-{status.rebuild_id}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    log.info("projections_rebuild_started", rebuild_id=status.rebuild_id, only=body.only,
             actor=principal.subject)
    return status.as_dict()


@router.get("/projections/{rebuild_id}", responses=problem_responses(404))
async def rebuild_status(ctx: Context, principal: Admin, rebuild_id: str) -> dict[str, Any]:
    """The rebuild's phase, events/s, progress, the tables that differ, and its last heartbeat
    (`abandoned`, with what to do, once its process stopped reporting)."""
    found = None
    if installation_admin(principal, ctx.settings.project):
        found = await RebuildRecorder.of(ctx.pool, ctx.settings).read(rebuild_id)
    if found is None:
        raise UnknownRebuild(rebuild_id)
    return found
