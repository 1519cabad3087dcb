"""`POST /api/backtests` (start one), `GET /api/backtests/{backtest_id}` (its comparison) and
`GET /api/backtests` (the project's)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, model_validator

from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.inputs import NUL_PROBLEM, IsoAwareTime, NulFree, nul_locations
from bend.security.roles import Principal
from bend.services import backtests as service

__all__ = ["router"]

router = APIRouter(prefix="/api/backtests", tags=["backtests"], dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("runs:read"))]
Starter = Annotated[Principal, Depends(permit("runs:replay"))]


class BacktestRequest(BaseModel):
    """A step's change tried on past runs of its workflow."""

    workflow_id: NulFree = Field(description="The workflow whose runs are backtested")
    step_id: NulFree = Field(description="The step to change; each run is forked from it")
    changes: dict[str, Any] = Field(description="The step's fields to change (prompt, model, "
                                                "temperature, ...); null removes one")
    run_ids: list[NulFree] = Field(default_factory=list, max_length=service.MAX_RUNS,
                                   description="The runs to backtest (else the filter chooses)")
    status: list[str] = Field(default_factory=lambda: ["completed"],
                              description="Filter: completed and/or failed")
    since: IsoAwareTime | None = Field(default=None, description="Filter: requested at or after")
    until: IsoAwareTime | None = Field(default=None, description="Filter: requested before")
    limit: int = Field(default=20, ge=1, le=service.MAX_RUNS,
                       description="Filter: at most this many runs, newest first")
    live_downstream: bool = Field(default=False, description="Run the agent, tool and http "
                                  "steps after the changed one for real instead of reusing "
                                  "their recorded outputs")

    @model_validator(mode="after")
    def _storable(self) -> BacktestRequest:
        nuls = nul_locations(self.changes, "changes")
        if nuls:
            raise ValueError(f"{', '.join(nuls)} {NUL_PROBLEM}")
        return self


@router.post("", status_code=202, responses=problem_responses(404, 409))
async def start_backtest(ctx: Context, principal: Starter, body: BacktestRequest,
                         response: Response) -> dict[str, Any]:
    """Fork each chosen run from the step with the change; its id and its runs (nothing is
    started if a run or the step is refused)."""
    started = await service.start_backtest(ctx, principal, service.BacktestSpec(
        workflow_id=body.workflow_id, step_id=body.step_id, changes=body.changes,
        run_ids=tuple(body.run_ids), statuses=tuple(body.status), since=body.since,
        until=body.until, limit=body.limit, live_downstream=body.live_downstream))
    response.headers["X-Bend-Position"] = started.position.token
    return started.as_dict()


@router.get("")
async def list_backtests(ctx: Context, principal: Reader, workflow_id: str | None = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The project's backtests, newest first."""
    return {"items": await service.list_backtests(ctx, principal, workflow_id=workflow_id,
                                                  limit=limit)}


@router.get("/{backtest_id}", responses=problem_responses(404))
async def get_backtest(ctx: Context, principal: Reader, backtest_id: str) -> dict[str, Any]:
    """Each run beside the one it was forked from (output diff, tokens, cost, latency,
    failure), and the aggregate."""
    return await service.get_backtest(ctx, principal, backtest_id)
