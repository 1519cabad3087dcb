"""/api/approvals and the doors that resume waiting runs: approve or reject, signal."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response

from bend.api.deps import Authenticated, Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.models.approvals import ApprovalDecision, ApprovalPage, ApprovalView, Sent
from bend.api.models.common import LogPosition
from bend.kafka.position import Position
from bend.security.roles import Principal
from bend.services import approvals as service

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["approvals"], dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("runs:read"))]
SignalName = Annotated[str, Path(pattern=r"^[A-Za-z_][\w.-]*$", max_length=100)]


def _sent(response: Response, run_id: str, position: Position) -> Sent:
    response.headers["X-Bend-Position"] = position.token
    return Sent(run_id=run_id, position=LogPosition.of(position))


@router.get("/approvals", response_model=ApprovalPage)
async def list_approvals(ctx: Context, principal: Reader) -> ApprovalPage:
    """The approvals waiting for a decision in the caller's project, oldest first."""
    rows = await service.pending_approvals(ctx, principal)
    return ApprovalPage(items=[ApprovalView.model_validate(r) for r in rows])


@router.post("/executions/{run_id}/approvals/{step_id}", status_code=202, response_model=Sent,
             responses=problem_responses(404, 409))
async def decide_approval(response: Response, ctx: Context, principal: Authenticated,
                          run_id: str, step_id: str, body: ApprovalDecision) -> Sent:
    """Approve or reject the run's waiting approval step, or the gated tool call its agent step
    `step_id` waits on (its approvers only); a rejected call's reason is the model's result."""
    position = await service.decide_approval(
        ctx, principal, run_id, step_id, approved=body.decision == "approve",
        comment=body.comment, answer=body.answer, tool_call_id=body.tool_call_id)
    return _sent(response, run_id, position)


@router.post("/executions/{run_id}/signals/{name}", status_code=202, response_model=Sent,
             responses=problem_responses(404, 409))
async def signal_run(response: Response, ctx: Context, principal: Authenticated, run_id: str,
                     name: SignalName, payload: Annotated[Any, Body()] = None) -> Sent:
    """Send the run the signal `name`; the body (any JSON) is its payload."""
    position = await service.signal_run(ctx, principal, run_id, name, payload)
    return _sent(response, run_id, position)
