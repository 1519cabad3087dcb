"""`GET /api/executions/{run_id}/replay` (fold vs projection) and `POST .../fork`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from bend.api.deps import Context, permit
from bend.api.errors import problem_responses
from bend.api.inputs import NUL_PROBLEM, NulFree, nul_locations
from bend.security.roles import Principal
from bend.services import runs as service

__all__ = ["router"]

router = APIRouter(prefix="/api/executions", tags=["replay"],
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("runs:read"))]
Starter = Annotated[Principal, Depends(permit("runs:replay"))]


class ForkRequest(BaseModel):
    """Where to fork from, and what to change in the input."""

    from_step: NulFree = Field(description="The step to run again; earlier outputs are reused")
    set: dict[str, Any] = Field(default_factory=dict, description="Input keys to change")
    input: Any = Field(default=None, description="A whole new input (null: the source's)")

    @model_validator(mode="after")
    def _storable(self) -> ForkRequest:
        nuls = nul_locations(self.set, "set") + nul_locations(self.input, "input")
        if nuls:
            raise ValueError(f"{', '.join(nuls)} {NUL_PROBLEM}")
        return self


@router.get("/{run_id}/replay", responses=problem_responses(404))
async def replay_execution(ctx: Context, principal: Reader, run_id: str) -> dict[str, Any]:
    """The run's events folded with the engine's `apply`, and where the projection differs
    (runs of the caller's project only)."""
    return (await service.replay_run(ctx, principal, run_id)).as_dict()


@router.post("/{run_id}/fork", status_code=202, responses=problem_responses(404))
async def fork_execution(ctx: Context, principal: Starter, run_id: str,
                         body: ForkRequest) -> dict[str, Any]:
    """Start a run reusing `run_id`'s outputs before `from_step`; its id (runs of the caller's
    project only)."""
    forked = await service.fork_run(ctx, principal, run_id, body.from_step, input=body.input,
                                    overrides=body.set)
    return forked.as_dict()
