"""Workflows: the list with search, a workflow's versions, graph and triggers; start a run."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.api.graph import run_graph
from bend.api.paging import after_cursor, next_cursor
from bend.core.triggers.schedules import next_due
from bend.core.triggers import ScheduleTrigger, parse_trigger
from bend.services import workflows as service
from bend.web.errors import BadForm, NotFound
from bend.web.edges import edge_roles
from bend.web.layout import layout
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from projections.queries import triggers as trigger_queries
from projections.queries import workflows as queries

__all__ = ["router"]

router = APIRouter(prefix="/ui/workflows", route_class=UiRoute, include_in_schema=False)

_WAIT_S = 10.0


@router.get("")
async def workflows(request: Request, session: Ui, q: str | None = None,
                    cursor: str | None = None) -> Response:
    """Workflows of the caller's project, newest first, searched by name and description."""
    need(session, "workflows:read")
    ctx = context(request)
    search = (q or "").strip()[:200] or None
    rows = await queries.list_workflows(ctx.pool, session.principal.project, search=search,
                                        after=after_cursor(cursor), limit=51)
    return page(request, "workflows.html", {
        "rows": rows[:50], "q": search or "",
        "next_cursor": next_cursor(rows, 50, "created_at", "workflow_id")})


def next_fire(row: dict[str, Any], now: datetime) -> datetime | None:
    """When a schedule trigger fires next (None for other triggers or disabled ones)."""
    if not row["enabled"] or row["trigger_type"] != "schedule":
        return None
    trigger = parse_trigger(row["definition"])
    if not isinstance(trigger, ScheduleTrigger):
        return None
    return next_due(trigger.schedule, row["last_due_at"], now)


def definition_graph(definition: Any) -> dict[str, Any]:
    """The definition's nodes and edges, laid out (the run graph's shape, with no run)."""
    graph = run_graph({"run_id": "", "status": "", "definition": definition}, [])
    placed = layout([n.id for n in graph.nodes],
                    [(e.source, e.target, e.kind) for e in graph.edges])
    roles = edge_roles(definition, [(e.source, e.target, e.kind) for e in graph.edges])
    return {"nodes": graph.nodes, "layout": placed, "roles": roles}


@router.get("/{workflow_id}")
async def workflow(request: Request, session: Ui, workflow_id: str,
                   version: int | None = None) -> Response:
    """A workflow: its versions, its definition as a graph, its triggers, a start form."""
    need(session, "workflows:read")
    ctx = context(request)
    row = await queries.get_workflow(ctx.pool, session.principal.project, workflow_id)
    if row is None:
        raise NotFound(f"workflow {workflow_id} not found in project "
                       f"{session.principal.project}")
    wanted = version or row["latest_version"]
    found = await queries.get_version(ctx.pool, workflow_id, wanted)
    if found is None:
        raise NotFound(f"workflow {workflow_id} has no version {wanted}; its latest is "
                       f"{row['latest_version']}")
    now = datetime.now(timezone.utc)
    triggers = []
    if session.can("triggers:read"):
        for t in await trigger_queries.list_triggers(ctx.pool, session.principal.project,
                                                     workflow_id):
            triggers.append({**t, "next_fire": next_fire(t, now)})
    return page(request, "workflow.html", {
        "wf": row, "version": wanted, "definition": found["definition"],
        "definition_hash": found["definition_hash"],
        "versions": await queries.versions(ctx.pool, workflow_id),
        "graph": definition_graph(found["definition"]), "triggers": triggers,
        "example_input": _example_input(found["definition"]),
    })


def _example_input(definition: Any) -> str:
    """A start form's initial input: the schema's required keys with placeholder values."""
    schema = (definition or {}).get("input_schema") or {}
    props = schema.get("properties") or {}
    sample: dict[str, Any] = {}
    for key in schema.get("required") or []:
        kind: Any = (props.get(key) or {}).get("type")  # a JSON schema's, whatever it is
        sample[key] = {"integer": 1, "number": 1, "boolean": False, "array": [],
                       "object": {}}.get(kind, "")
    return json.dumps(sample, indent=2)


@router.post("/{workflow_id}/start")
async def start(request: Request, session: Ui, workflow_id: str) -> Response:
    """Start a run with the form's JSON input (the API's execute), then open its page."""
    form = await form_of(request, session, "workflows:execute")
    text = str(form.get("input") or "").strip() or "{}"
    try:
        run_input = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadForm(f"the input is not JSON: {err.msg} at line {err.lineno} column "
                      f"{err.colno}") from None
    ctx = context(request)
    started = await service.start_run(ctx, session.principal, workflow_id, run_input)
    if started.position is not None:
        await ctx.watcher.wait_for([started.position], _WAIT_S)
    return RedirectResponse(f"/ui/runs/{started.run_id}", status_code=303)
