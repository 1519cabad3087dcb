"""A run's page, its live stream, and its actions: cancel, fork from a step, retry a step."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from bend.api.follow import MAX_SEQ, SSE_MEDIA_TYPE, resume_after
from bend.api.tokens import follow_tokens
from bend.services import runs as service
from bend.web.errors import BadForm, NotFound
from bend.web.render import masked, page, redactor_for, templates, unmask
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.runview import read_run_view
from bend.web.session import Session
from bend.web.streams import MAX_S, run_state
from projections.queries import runs as queries

__all__ = ["router"]

router = APIRouter(prefix="/ui/runs", route_class=UiRoute, include_in_schema=False)

_APPEAR_S = 10.0
_EXPLAIN_EVERY_S = 10.0  # how long an action waits for a new run to reach the read models


async def _run(request: Request, session: Session, run_id: str) -> dict[str, Any]:
    need(session, "runs:read")
    row = await queries.get_run(context(request).pool, session.principal.project, run_id)
    if row is None:
        raise NotFound(f"run {run_id} not found in project {session.principal.project}; "
                       "it may not be projected yet, or the id is wrong")
    return row


@router.get("/{run_id}")
async def run_page(request: Request, session: Ui, run_id: str) -> Response:
    """Status, step graph, timeline, event log, step details, what it waits on, actions."""
    run = await _run(request, session, run_id)
    redactor = await redactor_for(request, session.principal.project)
    view = await read_run_view(context(request), run, redactor)
    return page(request, "run.html", {
        "v": view, "run": run, "redactor": redactor,
        "fork_input": json.dumps(masked(run.get("input"), redactor), indent=2, default=str),
        "finished": run["status"] in queries.FINISHED,
    })


def _parts() -> Any:
    return templates.env.get_template("_run_parts.html").make_module({})


@router.get("/{run_id}/stream")
async def run_stream(request: Request, session: Ui, run_id: str,
                     after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
                     last_event_id: str | None = Header(default=None),
                     follow_s: Annotated[float, Query(gt=0, le=3600)] = MAX_S,
                     status: str | None = None) -> Response:
    """Server-sent `state` frames: status, node statuses, new event rows, timeline, waiting,
    and the step panels that changed."""
    await _run(request, session, run_id)
    after_seq = resume_after(after_seq, last_event_id)
    ctx = context(request)
    redactor = await redactor_for(request, session.principal.project)
    parts = _parts()
    explained = [0.0]  # when the explain service was last asked (it reads Kafka: not each frame)
    sent_panels: dict[str, str] = {}  # step_id -> the panel HTML this stream last sent
    can_retry = session.can("runs:replay")

    async def render(after: int) -> dict[str, Any]:
        run = await queries.get_run(ctx.pool, session.principal.project, run_id) or {}
        finished = run.get("status") in queries.FINISHED
        explain = finished or time.monotonic() - explained[0] >= _EXPLAIN_EVERY_S
        if explain:
            explained[0] = time.monotonic()
        view = await read_run_view(ctx, run, redactor, explain=explain)
        new = [e for e in view.events if e["seq"] > after]
        panels = []  # [step_id, html] of the panels that changed since the last frame
        for p in view.panels:
            html = str(parts.step_panel(p, run_id, view.failed_steps, can_retry, session.csrf,
                                        redactor))
            if sent_panels.get(p.row["step_id"]) != html:
                sent_panels[p.row["step_id"]] = html
                panels.append([p.row["step_id"], html])
        return {
            "status": run["status"], "last_seq": view.last_seq,
            "nodes": {n.id: n.status if n.status != "not_started" else "pending"
                      for n in view.graph.nodes},
            "events_html": str(parts.event_rows(new, redactor)),
            "panels": panels, "panel_order": [p.row["step_id"] for p in view.panels],
            "timeline_html": str(parts.timeline(view.timeline)),
            # Between two asks of the explain service the page keeps what it last said.
            "waiting_html": str(parts.waiting(view.waiting, run["status"])) if explain else None,
            "finished": run["status"] in queries.FINISHED,
        }

    return StreamingResponse(run_state(ctx, run_id, after_seq, render,
                                       shown_status=status, max_s=follow_s),
                             media_type=SSE_MEDIA_TYPE,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{run_id}/tokens")
async def run_tokens(request: Request, session: Ui, run_id: str, step_id: str,
                     follow_s: Annotated[float, Query(gt=0, le=3600)] = MAX_S) -> Response:
    """Server-sent `tokens` frames: an agent step's model text as it streams (the side channel
    of bend.api.tokens), the project's secrets masked, until the step ends."""
    await _run(request, session, run_id)
    redactor = await redactor_for(request, session.principal.project)
    return StreamingResponse(follow_tokens(context(request), run_id, step_id, max_s=follow_s,
                                           redact=redactor.text),
                             media_type=SSE_MEDIA_TYPE,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{run_id}/replay")
async def replay_page(request: Request, session: Ui, run_id: str) -> Response:
    """The run replayed: its events read from the log and folded with the engine's `apply`,
    compared with the read models (the API's replay)."""
    run = await _run(request, session, run_id)
    report = (await service.replay_run(context(request), session.principal, run_id)).as_dict()
    redactor = await redactor_for(request, session.principal.project)
    return page(request, "replay.html", {"run": run, "report": report, "redactor": redactor})


@router.post("/{run_id}/cancel")
async def cancel(request: Request, session: Ui, run_id: str) -> Response:
    """Ask the orchestrator to cancel the run (the API's cancel)."""
    form = await form_of(request, session, "runs:cancel")
    await _run(request, session, run_id)
    reason = str(form.get("reason") or "").strip()[:2000] or f"cancelled in the web UI by " \
                                                              f"{session.name}"
    await service.cancel_run(context(request), session.principal, run_id, reason)
    return RedirectResponse(f"/ui/runs/{run_id}", status_code=303)


async def _appeared(request: Request, session: Session, run_id: str) -> None:
    """Wait (bounded) until a run just asked for shows in the read models."""
    ctx = context(request)
    deadline = time.monotonic() + _APPEAR_S
    while await queries.get_run(ctx.pool, session.principal.project, run_id) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return  # its page says it is not projected yet
        await ctx.watcher.changed(min(left, 0.5))
        await asyncio.sleep(0)


def _known_step(run: dict[str, Any], step_id: str) -> str:
    if step_id not in _step_ids(run):
        raise BadForm(f"run {run['run_id']} has no step {step_id!r}")
    return step_id


async def _forked(request: Request, session: Session, forked: service.Forked) -> Response:
    await _appeared(request, session, forked.run_id)
    return RedirectResponse(f"/ui/runs/{forked.run_id}", status_code=303)


def _step_ids(run: dict[str, Any]) -> set[str | None]:
    steps = (run.get("definition") or {}).get("steps") or []
    return {s.get("id") for s in steps if isinstance(s, dict)}


@router.post("/{run_id}/fork")
async def fork(request: Request, session: Ui, run_id: str) -> Response:
    """Start a new run from a chosen step with the form's input (earlier outputs reused)."""
    form = await form_of(request, session, "runs:replay")
    run = await _run(request, session, run_id)
    text = str(form.get("input") or "").strip()
    new_input = None
    if text:
        try:
            new_input = json.loads(text)
        except json.JSONDecodeError as err:
            raise BadForm(f"the input is not JSON: {err.msg} at line {err.lineno} column "
                          f"{err.colno}") from None
        # The form showed the input with secrets masked: masked parts left as shown get their
        # real values back, so only what the user changed changes.
        original = run.get("input")
        new_input = unmask(new_input, original,
                            await redactor_for(request, session.principal.project))
        if new_input == original:
            new_input = None
    step_id = _known_step(run, str(form.get("step_id") or ""))
    return await _forked(request, session, await service.fork_run(
        context(request), session.principal, run_id, step_id, input=new_input))


@router.post("/{run_id}/retry")
async def retry(request: Request, session: Ui, run_id: str) -> Response:
    """Retry a failed step: fork the run from that step with the same input."""
    form = await form_of(request, session, "runs:replay")
    run = await _run(request, session, run_id)
    step_id = _known_step(run, str(form.get("step_id") or ""))
    return await _forked(request, session, await service.retry_step(
        context(request), session.principal, run_id, step_id))
