"""POST /webhooks/{path}: a signed delivery fires its webhook trigger and starts a run (the use
case, with how deliveries are authenticated, is bend.services.webhooks)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bend.api.deps import Context, Sec
from bend.api.errors import problem_responses
from bend.api.models.common import LogPosition
from bend.api.models.triggers import WebhookAccepted
from bend.security.dependencies import client_ip
from bend.services import webhooks as service

__all__ = ["router"]

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_BODY = {"requestBody": {"required": False, "description": "Any payload; JSON when its "
                         "Content-Type says so", "content": {"application/json": {
                             "schema": {}}}}}


@router.post("/{path}", status_code=202, response_model=WebhookAccepted, openapi_extra=_BODY,
             responses=problem_responses(400, 401, 409, 413, 415, 422, 429, 503))
async def receive(path: str, request: Request, response: Response, ctx: Context,
                  security: Sec) -> WebhookAccepted:
    """Verify a signed delivery, then record the firing and start the workflow's run."""
    await security.limits.check_ip(client_ip(request))
    raw = await request.body()
    delivered = await service.deliver(ctx, security, path, request.headers,
                                      request.query_params, raw)
    response.headers["Location"] = f"/api/executions/{delivered.run_id}"
    response.headers["X-Bend-Position"] = delivered.position.token
    return WebhookAccepted(run_id=delivered.run_id, trigger_id=delivered.trigger_id,
                           workflow_id=delivered.workflow_id,
                           workflow_version=delivered.workflow_version,
                           position=LogPosition.of(delivered.position))
