"""Workflows: the list with search, a workflow's versions, graph and triggers; start a run from a
form made from its input schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.api.graph import run_graph
from bend.api.paging import after_cursor, next_cursor
from bend.services import triggers as trigger_service
from bend.services import workflows as service
from bend.services.errors import IdempotencyConflict, InvalidInput
from bend.web.errors import NotFound
from bend.web.inputform import FormErrors, InputField, input_fields, place_problems, read_input
from bend.web.edges import edge_roles
from bend.web.layout import layout
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.session import Session
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
    upcoming = trigger_service.next_fire_times(row, now, 1)
    return upcoming[0] if upcoming else None


def definition_graph(definition: Any) -> dict[str, Any]:
    """The definition's nodes and edges, laid out (the run graph's shape, with no run)."""
    graph = run_graph({"run_id": "", "status": "", "definition": definition}, [])
    placed = layout([n.id for n in graph.nodes],
                    [(e.source, e.target, e.kind) for e in graph.edges])
    roles = edge_roles(definition, [(e.source, e.target, e.kind) for e in graph.edges])
    return {"nodes": graph.nodes, "layout": placed, "roles": roles}


@dataclass(frozen=True, slots=True)
class StartForm:
    """The start form as last sent: what was typed, and what the server said about it."""

    values: Mapping[str, str]
    errors: FormErrors


@router.get("/{workflow_id}")
async def workflow(request: Request, session: Ui, workflow_id: str,
                   version: int | None = None, saved: str | None = None) -> Response:
    """A workflow: its versions, its definition as a graph, its triggers, a start form."""
    need(session, "workflows:read")
    return await _workflow_page(request, session, workflow_id, version, saved=saved)


async def _workflow_page(request: Request, session: Session, workflow_id: str,
                         version: int | None, *, saved: str | None = None,
                         start: StartForm | None = None, status: int = 200) -> Response:
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
    latest = found if wanted == row["latest_version"] else await queries.get_version(
        ctx.pool, workflow_id, row["latest_version"])
    fields = input_fields(((latest or found)["definition"] or {}).get("input_schema"))
    return page(request, "workflow.html", {
        "wf": row, "version": wanted, "definition": found["definition"],
        "definition_hash": found["definition_hash"],
        "versions": await queries.versions(ctx.pool, workflow_id),
        "graph": definition_graph(found["definition"]), "triggers": triggers,
        "saved": saved, "fields": fields,
        "example_input": _example_input((latest or found)["definition"]),
        "start": start or StartForm({}, FormErrors()),
    }, status=status)


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


def _typed_input(form: Mapping[str, str], fields: tuple[InputField, ...] | None
                 ) -> tuple[Any, FormErrors]:
    """The run input the form spells: its JSON box if filled in (or the only box), else its
    fields' values. Errors of the JSON box are filed under the field name ""."""
    text = form.get("input", "").strip()
    if fields is not None and not text:
        return read_input(fields, form)
    errors = FormErrors()
    try:
        return json.loads(text or "{}"), errors
    except json.JSONDecodeError as err:
        errors.add("", f"the input is not JSON: {err.msg} at line {err.lineno} column "
                       f"{err.colno}")
        return None, errors


@router.post("/{workflow_id}/start")
async def start(request: Request, session: Ui, workflow_id: str) -> Response:
    """Start a run with the form's input (the API's execute), then open its page; a problem
    re-shows the form with what was typed and the server's word next to its field."""
    sent = await form_of(request, session, "workflows:execute")
    form = {k: v for k, v in sent.items() if isinstance(v, str) and k != "csrf_token"}
    ctx = context(request)
    _, definition = await service.pinned(ctx, session.principal, workflow_id, None)
    fields = input_fields(definition.get("input_schema"))
    run_input, errors = _typed_input(form, fields)
    key = form.get("idempotency_key", "").strip() or None
    if not errors:
        try:
            started = await service.start_run(ctx, session.principal, workflow_id, run_input,
                                              idempotency_key=key)
        except InvalidInput as err:
            as_json = fields is None or bool(form.get("input", "").strip())
            errors = place_problems(err.problems, None if as_json else fields)
            if as_json:  # the JSON box is the field they are about
                errors = FormErrors({"": [*errors.general]})
        except IdempotencyConflict as err:
            errors.add("idempotency_key", err.message)
        else:
            if started.position is not None:
                await ctx.watcher.wait_for([started.position], _WAIT_S)
            return RedirectResponse(f"/ui/runs/{started.run_id}", status_code=303)
    return await _workflow_page(request, session, workflow_id, None,
                                start=StartForm(form, errors), status=422)
