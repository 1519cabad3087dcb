"""The workflow editor: a new workflow or a new version of one, written as YAML or JSON, checked
by the API's own validation as it is typed (each problem at its line) with its step graph
redrawn; saving creates a new immutable version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from bend.api.bodies import definition_from_text
from bend.core.definitions import WorkflowDefinition, definition_json
from bend.core.problem_lines import PlacedProblem, place
from bend.core.problems import InvalidDefinition
from bend.services import workflows as service
from bend.web.render import page, templates
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.routes.workflows import definition_graph
from bend.web.session import Session
from bend.web.versions import NEW_WORKFLOW, definition_yaml

__all__ = ["router"]

router = APIRouter(prefix="/ui/workflows", route_class=UiRoute, include_in_schema=False)

_WAIT_S = 10.0
GRAPH_ID = "editor-graph"


def _checked(text: str) -> tuple[WorkflowDefinition | None, list[PlacedProblem]]:
    """The definition in `text`, or every problem the API would answer, each at its line."""
    try:
        return definition_from_text(text), []
    except InvalidDefinition as err:
        return None, place(text, err.problems)


def _graph_html(defn: WorkflowDefinition) -> str:
    """The definition's step graph as the workflow page draws it (an SVG fragment)."""
    return templates.get_template("_editor_graph.html").render(
        graph=definition_graph(definition_json(defn)), graph_id=GRAPH_ID)


def _editor(request: Request, session: Session, text: str, wf: dict[str, Any] | None,
            base_version: int | None, problems: list[PlacedProblem] | None = None,
            status: int = 200, saved_since: int | None = None) -> Response:
    """The editor page; `saved_since`: the version the author had seen when another was saved
    (the page says so, and a second save goes through)."""
    defn, found = _checked(text)
    return page(request, "editor.html", {
        "wf": wf, "text": text, "base_version": base_version, "saved_since": saved_since,
        "problems": found if problems is None else problems,
        "graph": definition_graph(definition_json(defn)) if defn else None,
        "graph_id": GRAPH_ID,
    }, status=status)


@router.get("/new")
async def new(request: Request, session: Ui) -> Response:
    """The editor with a small example to start from."""
    need(session, "workflows:write")
    return _editor(request, session, NEW_WORKFLOW, None, None)


@router.post("/new")
async def create(request: Request, session: Ui) -> Response:
    """Create the workflow the form holds (version 1), or show its problems at their lines."""
    form = await form_of(request, session, "workflows:write")
    text = str(form.get("definition") or "")
    defn, problems = _checked(text)
    if defn is None:
        return _editor(request, session, text, None, None, problems, status=422)
    ctx = context(request)
    written = await service.create_workflow(ctx, session.principal, defn)
    if written.position is not None:
        await ctx.watcher.wait_for([written.position], _WAIT_S)
    return RedirectResponse(f"/ui/workflows/{written.workflow_id}?saved=created",
                            status_code=303)


async def _workflow(request: Request, session: Session, workflow_id: str) -> dict[str, Any]:
    return await service.get_workflow(context(request), session.principal, workflow_id,
                                      live=True)


@router.get("/{workflow_id}/edit")
async def edit(request: Request, session: Ui, workflow_id: str,
               version: int | None = None) -> Response:
    """The editor on the workflow's latest version (or `version`), as YAML."""
    need(session, "workflows:write")
    wf = await _workflow(request, session, workflow_id)
    _, definition = await service.pinned(context(request), session.principal, workflow_id,
                                         version)
    return _editor(request, session, definition_yaml(definition), wf, version or
                   wf["latest_version"])


@router.post("/{workflow_id}/edit")
async def save(request: Request, session: Ui, workflow_id: str) -> Response:
    """Save the form's definition as the workflow's next version (none if unchanged); if
    another version was saved since the editor opened, say so first (no update is lost)."""
    form = await form_of(request, session, "workflows:write")
    wf = await _workflow(request, session, workflow_id)
    text = str(form.get("definition") or "")
    base, seen = (str(form.get(k) or "") for k in ("base_version", "latest_seen"))
    base_version = int(base) if base.isdigit() else None
    defn, problems = _checked(text)
    if defn is None:
        return _editor(request, session, text, wf, base_version, problems, status=422)
    if seen.isdigit() and int(seen) < wf["latest_version"]:
        return _editor(request, session, text, wf, base_version, status=409,
                       saved_since=int(seen))
    written = await service.version_workflow(context(request), session.principal,
                                             workflow_id, defn)
    outcome = "version" if written.changed else "unchanged"
    return RedirectResponse(f"/ui/workflows/{workflow_id}?version={written.version}"
                            f"&saved={outcome}", status_code=303)


@router.post("/validate")
async def validate(request: Request, session: Ui) -> Response:
    """The API's verdict on the form's definition: problems with lines, and its step graph."""
    form = await form_of(request, session, "workflows:write")
    text = str(form.get("definition") or "")
    defn, problems = _checked(text)
    return JSONResponse({
        "valid": defn is not None,
        "problems": [{"line": p.line, "column": p.column, "location": p.location,
                      "message": p.message, "code": p.code} for p in problems],
        "graph_html": _graph_html(defn) if defn is not None else None,
        "steps": len(defn.steps) if defn is not None else None,
    }, headers={"Cache-Control": "no-store"})

