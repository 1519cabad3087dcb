"""/api/notifications: the delivery log of the webhooks and e-mails runs' workflows ask for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from bend.api.deps import Context, permit
from bend.api.errors import problem_responses
from bend.security.roles import Principal
from bend.services import notifications as service

__all__ = ["router"]

router = APIRouter(prefix="/api/notifications", tags=["notifications"],
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("runs:read"))]


class DeliveryView(BaseModel):
    """One delivery: what it told whom, and how sending it went."""

    delivery_id: str
    run_id: str
    workflow_id: str
    event: str
    event_id: str
    channel: str
    target: str
    status: str  # sending | delivered | failed
    attempts: int
    response_status: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class DeliveryPage(BaseModel):
    """Deliveries, newest first."""

    items: list[DeliveryView]


@router.get("/deliveries", response_model=DeliveryPage)
async def list_deliveries(ctx: Context, principal: Reader,
                          run_id: Annotated[str | None, Query(max_length=200)] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> DeliveryPage:
    """The project's notification deliveries (of one run, with `run_id`), newest first."""
    rows = await service.deliveries(ctx, principal, run_id=run_id, limit=limit)
    return DeliveryPage(items=[DeliveryView.model_validate(r) for r in rows])
