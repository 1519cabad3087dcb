"""Activate, pause or delete a workflow from the UI, each after a confirmation page."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.services import workflows as service
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need

__all__ = ["router"]

router = APIRouter(prefix="/ui/workflows", route_class=UiRoute, include_in_schema=False)

Action = Literal["activate", "pause", "delete"]
_STATUS = {"activate": "active", "pause": "paused", "delete": "deleted"}
_WHAT = {
    "activate": "Its triggers start runs again.",
    "pause": "Its triggers stop starting runs; runs started by hand or through the API still "
             "start, and runs under way go on.",
    "delete": "It can no longer be run or changed, and its triggers stop. Its versions and "
              "runs stay readable. This cannot be undone: to run it again, create it anew.",
}
_WAIT_S = 10.0


@router.get("/{workflow_id}/status/{action}")
async def confirm(request: Request, session: Ui, workflow_id: str, action: Action) -> Response:
    """The confirmation page: what the action does, a button to do it, a way back."""
    need(session, "workflows:write")
    wf = await service.get_workflow(context(request), session.principal, workflow_id,
                                    live=True)
    return page(request, "confirm.html", {"wf": wf, "action": action, "what": _WHAT[action]})


@router.post("/{workflow_id}/status/{action}")
async def act(request: Request, session: Ui, workflow_id: str, action: Action) -> Response:
    """Give the workflow the action's status (the API's activate, pause or delete)."""
    await form_of(request, session, "workflows:write")
    ctx = context(request)
    changed = await service.set_status(ctx, session.principal, workflow_id, _STATUS[action])
    if changed.position is not None:
        await ctx.watcher.wait_for([changed.position], _WAIT_S)
    return RedirectResponse(f"/ui/workflows/{workflow_id}?saved={action}", status_code=303)
