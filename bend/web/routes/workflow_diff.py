"""Two versions of a workflow compared: the unified diff of their definitions' YAML."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bend.services import workflows as service
from bend.web.errors import NotFound
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, need
from bend.web.versions import diff_lines
from projections.queries import workflows as queries

__all__ = ["router"]

router = APIRouter(prefix="/ui/workflows", route_class=UiRoute, include_in_schema=False)


@router.get("/{workflow_id}/diff")
async def diff(request: Request, session: Ui, workflow_id: str, old: int | None = None,
               new: int | None = None) -> Response:
    """Version `old` (default: the one before `new`) against `new` (default: the latest)."""
    need(session, "workflows:read")
    ctx = context(request)
    wf = await service.get_workflow(ctx, session.principal, workflow_id)
    new = new or wf["latest_version"]
    old = old or max(new - 1, 1)
    found = {}
    for v in {old, new}:
        row = await queries.get_version(ctx.pool, workflow_id, v)
        if row is None:
            raise NotFound(f"workflow {workflow_id} has no version {v}; its versions are 1 to "
                           f"{wf['latest_version']}")
        found[v] = row
    return page(request, "workflow_diff.html", {
        "wf": wf, "old": old, "new": new,
        "old_hash": found[old]["definition_hash"], "new_hash": found[new]["definition_hash"],
        "lines": diff_lines(found[old]["definition"], found[new]["definition"]),
        "versions": await queries.versions(ctx.pool, workflow_id),
    })
