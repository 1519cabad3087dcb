"""A workflow's triggers: list them with their state, next fire and last errors; add and edit
cron schedules (the next five fire times previewed as you type), Kafka and polling triggers from
their fields, add webhooks (the secret shown once) and any trigger from its JSON or YAML
definition; pause, resume and delete. Through bend.services.triggers, as the API's routes."""

from __future__ import annotations

import secrets as random_secrets
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from bend.core.triggers import ScheduleTrigger, parse_trigger
from bend.core.triggers.errors import InvalidTrigger
from bend.core.triggers.schedule_spec import zone
from bend.security.dependencies import client_ip, get_security
from bend.services import triggers as service
from bend.services import workflows
from bend.services.trigger_checks import WebhookPathTaken
from bend.web.errors import BadForm
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.session import Session
from bend.web.sourceform import (
    SOURCE_KINDS, SourceForm, blank, placed, source_definition, source_form_from, source_form_of,
)
from bend.web.triggerform import (
    DAYS, MISSED_POLICIES, CronForm, cron_definition, cron_form_from, cron_form_of, place,
    typed_definition, webhook_definition, webhook_secret_name,
)

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)

PREVIEW_COUNT = 5
_ERRORS_SHOWN = 5
_EMPTY = CronForm({"cron": "", "timezone": "UTC", "missed_policy": "skip", "max_catch_up": "10",
                   "window_start": "", "window_end": "", "input": ""})


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _page(request: Request, session: Session, workflow_id: str, *,
                cron: CronForm = _EMPTY, hook: dict[str, Any] | None = None,
                typed: dict[str, Any] | None = None, source: SourceForm | None = None,
                done: str | None = None, status: int = 200) -> Response:
    ctx = context(request)
    wf = await workflows.get_workflow(ctx, session.principal, workflow_id)
    rows = await service.list_triggers(ctx, session.principal, workflow_id)
    now = _now()
    items = []
    for row in rows:
        errors = (await service.recent_errors(ctx, session.principal, row["trigger_id"],
                                              _ERRORS_SHOWN)) if row["error_count"] else []
        path = row["webhook_path"]
        upcoming = service.next_fire_times(row, now, 1)
        items.append({**row, "next_fire": upcoming[0] if upcoming else None,
                      "errors": errors, "editable": _editable(row),
                      "url": service.webhook_url(str(request.base_url), path) if path else None})
    return page(request, "triggers.html", {
        "wf": wf, "rows": items, "cron": cron, "days": DAYS, "policies": MISSED_POLICIES,
        "hook": hook or {"values": {}, "errors": {}}, "typed": typed or {"text": "", "error": None},
        "sources": {kind: source if source is not None and source.kind == kind else blank(kind)
                    for kind in SOURCE_KINDS},
        "done": done, "can_write": session.can("triggers:write") and wf["status"] != "deleted",
    }, status=status)


def _editable(row: dict[str, Any]) -> bool:
    """Whether the trigger has an edit form: cron schedules, Kafka and polling triggers."""
    return (bool((row["definition"].get("schedule") or {}).get("cron"))
            or row["trigger_type"] in SOURCE_KINDS)


@router.get("/workflows/{workflow_id}/triggers")
async def triggers(request: Request, session: Ui, workflow_id: str,
                   done: str | None = None) -> Response:
    """The workflow's triggers, and (for writers) the forms that add them."""
    need(session, "triggers:read")
    return await _page(request, session, workflow_id, done=done)


def _back(workflow_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/workflows/{workflow_id}/triggers?done={done}", status_code=303)


@router.post("/workflows/{workflow_id}/triggers/cron")
async def add_cron(request: Request, session: Ui, workflow_id: str) -> Response:
    """Add a cron trigger; problems come back next to their fields with what was typed."""
    typed = cron_form_of(await form_of(request, session, "triggers:write"))
    definition, errors = cron_definition(typed)
    if definition is not None:
        try:
            await service.create_trigger(context(request), session.principal, workflow_id,
                                         definition, wait=True)
        except InvalidTrigger as err:  # what only the service checks (a NUL character)
            errors = place(err.problems, "cron")
        else:
            return _back(workflow_id, "added")
    return await _page(request, session, workflow_id,
                       cron=CronForm(typed.values, typed.days, errors), status=422)


@router.post("/triggers/preview")
async def preview(request: Request, session: Ui) -> Response:
    """The cron form's next five fire times (the scheduler's own computation), or its problems
    by field; the form posts here as you type."""
    typed = cron_form_of(await form_of(request, session, "triggers:write"))
    definition, errors = cron_definition(typed)
    times: list[dict[str, str]] = []
    if definition is not None:
        trigger = parse_trigger(definition)
        assert isinstance(trigger, ScheduleTrigger)
        local = zone(trigger.schedule.timezone)
        for at in service.preview(trigger.schedule, _now(), PREVIEW_COUNT):
            times.append({"at": at.isoformat().replace("+00:00", "Z"),
                          "local": at.astimezone(local).strftime("%a %Y-%m-%d %H:%M %Z")})
    return JSONResponse({"times": times, "errors": errors}, headers={"Cache-Control": "no-store"})


@router.post("/workflows/{workflow_id}/triggers/webhook")
async def add_webhook(request: Request, session: Ui, workflow_id: str) -> Response:
    """Add a webhook trigger with a new signing secret, shown on this page only."""
    form = await form_of(request, session, "triggers:write")
    path = str(form.get("path") or "").strip()
    mapping = str(form.get("input_mapping") or "").strip()
    secret_name = webhook_secret_name(path, random_secrets.token_hex(3).upper())
    definition, errors = webhook_definition(path, mapping, secret_name)
    ctx = context(request)
    written = None
    if definition is not None:
        try:
            written = await service.create_trigger(ctx, session.principal, workflow_id,
                                                   definition, wait=True)
        except WebhookPathTaken as err:
            errors = {"path": err.message}
    if written is None:
        return await _page(request, session, workflow_id, status=422, hook={
            "values": {"path": path, "input_mapping": mapping}, "errors": errors})
    secret = await service.store_webhook_secret(get_security(request), session.principal,
                                                secret_name, client_ip=client_ip(request))
    return page(request, "webhook_created.html", {
        "workflow_id": workflow_id, "trigger_id": written.trigger_id, "secret": secret,
        "secret_name": secret_name, "url": service.webhook_url(str(request.base_url), path)},
        headers={"Cache-Control": "no-store"})


@router.post("/workflows/{workflow_id}/triggers/definition")
async def add_definition(request: Request, session: Ui, workflow_id: str) -> Response:
    """Add any trigger (Kafka, polling, ...) from its definition typed as JSON or YAML."""
    form = await form_of(request, session, "triggers:write")
    text = str(form.get("definition") or "")
    data, error = typed_definition(text)
    if data is not None:
        try:
            await service.create_trigger(context(request), session.principal, workflow_id,
                                         data, wait=True)
        except (InvalidTrigger, WebhookPathTaken) as err:
            error = ("; ".join(err.problems) if isinstance(err, InvalidTrigger)
                     else err.message)
        else:
            return _back(workflow_id, "added")
    return await _page(request, session, workflow_id, typed={"text": text, "error": error},
                       status=422)


# Last of the adding routes: its {kind} would otherwise take /cron, /webhook and /definition.
@router.post("/workflows/{workflow_id}/triggers/{kind}")
async def add_source(request: Request, session: Ui, workflow_id: str, kind: str) -> Response:
    """Add a Kafka or polling trigger from its fields; problems come back next to them with
    what was typed."""
    if kind not in SOURCE_KINDS:
        raise BadForm(f"no {kind!r} trigger form; add kafka or polling triggers here, others "
                      "from their definition")
    typed = source_form_of(kind, await form_of(request, session, "triggers:write"))
    definition, errors = source_definition(typed)
    if definition is not None:
        try:
            await service.create_trigger(context(request), session.principal, workflow_id,
                                         definition, wait=True)
        except InvalidTrigger as err:
            errors = placed(kind, err.problems)
        else:
            return _back(workflow_id, "added")
    return await _page(request, session, workflow_id, status=422,
                       source=SourceForm(kind, typed.values, errors))


def _edited_kind(row: dict[str, Any]) -> str:
    """The trigger's edit form: cron, kafka or polling (others have none)."""
    if (row["definition"].get("schedule") or {}).get("cron"):
        return "cron"
    if row["trigger_type"] in SOURCE_KINDS:
        return str(row["trigger_type"])
    raise BadForm(f"trigger {row['trigger_id']} is a {row['trigger_type']} trigger without "
                  "an edit form here (cron, Kafka and polling triggers have one): delete it and "
                  "add it again (or PUT /api/triggers/{trigger_id})")


async def _edit_page(request: Request, row: dict[str, Any], form: CronForm | SourceForm,
                     status: int = 200) -> Response:
    return page(request, "trigger_edit.html", {
        "row": row, "cron": form if isinstance(form, CronForm) else None,
        "source": form if isinstance(form, SourceForm) else None, "days": DAYS,
        "policies": MISSED_POLICIES}, status=status)


@router.get("/triggers/{trigger_id}/edit")
async def edit(request: Request, session: Ui, trigger_id: str) -> Response:
    """A cron, Kafka or polling trigger's form, filled in from its definition."""
    need(session, "triggers:write")
    row = await service.get_trigger(context(request), session.principal, trigger_id)
    kind = _edited_kind(row)
    return await _edit_page(request, row, cron_form_from(row["definition"]) if kind == "cron"
                            else source_form_from(row["definition"]))


@router.post("/triggers/{trigger_id}/edit")
async def save_edit(request: Request, session: Ui, trigger_id: str) -> Response:
    """Save the trigger's edited fields (its other fields stay)."""
    form = await form_of(request, session, "triggers:write")
    ctx = context(request)
    row = await service.get_trigger(ctx, session.principal, trigger_id)
    kind = _edited_kind(row)
    typed: CronForm | SourceForm
    if kind == "cron":
        typed = cron_form_of(form)
        definition, errors = cron_definition(typed, row["definition"])
    else:
        typed = source_form_of(kind, form)
        definition, errors = source_definition(typed, row["definition"])
    if definition is not None:
        try:
            await service.update_trigger(ctx, session.principal, trigger_id, definition,
                                         row["enabled"], wait=True)
        except InvalidTrigger as err:
            errors = place(err.problems, "cron") if kind == "cron" else placed(kind,
                                                                              err.problems)
        else:
            return _back(row["workflow_id"], "saved")
    refused: CronForm | SourceForm = (
        CronForm(typed.values, typed.days, errors) if isinstance(typed, CronForm)
        else SourceForm(kind, typed.values, errors))
    return await _edit_page(request, row, refused, status=422)


@router.get("/triggers/{trigger_id}/delete")
async def confirm_delete(request: Request, session: Ui, trigger_id: str) -> Response:
    """Ask before deleting the trigger."""
    need(session, "triggers:write")
    row = await service.get_trigger(context(request), session.principal, trigger_id)
    return page(request, "trigger_delete.html", {"row": row})


@router.post("/triggers/{trigger_id}/delete")
async def delete(request: Request, session: Ui, trigger_id: str) -> Response:
    """Delete the trigger (the confirmation page's form)."""
    form = await form_of(request, session, "triggers:write")
    if form.get("confirm") != trigger_id:
        raise BadForm(f"confirm by submitting the confirmation form for trigger {trigger_id}")
    ctx = context(request)
    row = await service.get_trigger(ctx, session.principal, trigger_id)
    await service.delete_trigger(ctx, session.principal, trigger_id, wait=True)
    return _back(row["workflow_id"], "deleted")


# Last: its {action} would otherwise take /delete.
@router.post("/triggers/{trigger_id}/{action}")
async def pause_or_resume(request: Request, session: Ui, trigger_id: str,
                          action: str) -> Response:
    """Pause (it fires no more until resumed) or resume the trigger."""
    if action not in ("pause", "resume"):
        raise BadForm(f"no trigger action {action!r}; use pause or resume")
    await form_of(request, session, "triggers:write")
    ctx = context(request)
    row = await service.get_trigger(ctx, session.principal, trigger_id)
    await service.update_trigger(ctx, session.principal, trigger_id, None, action == "resume",
                                 wait=True)
    return _back(row["workflow_id"], {"pause": "paused", "resume": "resumed"}[action])
