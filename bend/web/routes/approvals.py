"""The approvals inbox: approval steps waiting in the project, with their run's context, and the
forms that approve or reject them (through bend.services.approvals, as the API's routes do)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.services import approvals as service
from bend.services.errors import InvalidAnswer
from bend.web.errors import BadForm
from bend.web.render import page, redactor_for, show
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.session import Session

__all__ = ["router"]

router = APIRouter(prefix="/ui/approvals", route_class=UiRoute, include_in_schema=False)

_WAIT_S = 10.0


async def _inbox(request: Request, session: Session, done: str | None = None,
                 refused: dict[str, str] | None = None, status: int = 200) -> Response:
    """The inbox; `refused`: a decision the server refused (its run and step, what was typed
    and why), shown in its card's form."""
    ctx, principal = context(request), session.principal
    redactor = await redactor_for(request, principal.project)
    rows: list[dict[str, Any]] = []
    for approval in await service.pending_approvals(ctx, principal):
        run = await service.approval_context(ctx, principal, approval["run_id"])
        rows.append({**approval, "input": show(run["input"], redactor),
                     "outputs": {k: show(v, redactor) for k, v in run["outputs"].items()},
                     "llm_calls": run["llm_calls"],
                     "schema": json.dumps(approval["answer_schema"], indent=2)
                     if approval["answer_schema"] else None})
    return page(request, "approvals.html", {"rows": rows,
                                            "done": done if done in ("approve", "reject")
                                            else None, "refused": refused or {}},
                status=status)


@router.get("")
async def approvals(request: Request, session: Ui, done: str | None = None) -> Response:
    """Approvals waiting for a decision, oldest first, each with its run's context."""
    need(session, "runs:read")
    return await _inbox(request, session, done)


@router.post("/{run_id}/{step_id}")
async def decide(request: Request, session: Ui, run_id: str, step_id: str) -> Response:
    """Approve or reject one approval; back to the inbox once the decision is on its way."""
    form = await form_of(request, session, "runs:read")  # its approvers: checked by the service
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise BadForm("choose approve or reject")
    answer: Any = None
    text, comment = str(form.get("answer") or ""), str(form.get("comment") or "")
    refused = {"run_id": run_id, "step_id": step_id, "answer": text, "comment": comment}
    if decision == "approve" and text.strip():
        try:
            answer = json.loads(text)
        except json.JSONDecodeError as exc:
            return await _inbox(request, session, status=422, refused={
                **refused, "error": f"the answer is not JSON: {exc.msg} (line {exc.lineno})"})
    try:
        position = await service.decide_approval(
            context(request), session.principal, run_id, step_id,
            approved=decision == "approve", comment=comment, answer=answer,
            tool_call_id=str(form.get("tool_call_id") or "") or None)
    except InvalidAnswer as err:
        return await _inbox(request, session, status=422, refused={**refused,
                                                                   "error": err.message})
    await context(request).watcher.wait_for([position], _WAIT_S)
    return RedirectResponse(f"/ui/approvals?done={decision}", status_code=303)
