"""Access (admins): the project's API keys (create with a role and project, the key shown once;
revoke after a confirmation) and the audit log with filters. Through bend.services."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.api.paging import after_cursor, next_cursor
from bend.security.dependencies import client_ip, get_security
from bend.security.roles import Role
from bend.services import audit as audit_service
from bend.services import keys as service
from bend.services.audit import ACTIONS, AuditFilter
from bend.services.errors import NotInstallationAdmin
from bend.web.errors import NotFound
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.render import page
from bend.web.session import Session

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)

AUDIT_PAGE = 50
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{0,200}")


async def _keys_page(request: Request, session: Session, *, typed: dict[str, str] | None = None,
                     errors: dict[str, str] | None = None, revoked: str | None = None,
                     status: int = 200) -> Response:
    now = datetime.now(timezone.utc)
    keys = await service.list_keys(get_security(request), session.principal)
    return page(request, "keys.html", {
        "keys": keys, "now": now, "roles": [r.value for r in Role], "revoked": revoked,
        "typed": typed or {"role": Role.VIEWER.value, "project": session.principal.project},
        "errors": errors or {}}, status=status)


@router.get("/keys")
async def keys(request: Request, session: Ui, revoked: str | None = None) -> Response:
    """Every key of the project, with a form for a new one."""
    need(session, "keys:admin")
    return await _keys_page(request, session, revoked=revoked)


@router.post("/keys")
async def create_key(request: Request, session: Ui) -> Response:
    """Create a key; the result page is the only time it is shown."""
    form = await form_of(request, session, "keys:admin")
    typed = {f: str(form.get(f) or "").strip() for f in ("name", "role", "project")}
    errors: dict[str, str] = {}
    if typed["role"] not in {r.value for r in Role}:
        errors["role"] = f"choose one of {', '.join(r.value for r in Role)}"
    if not _NAME.fullmatch(typed["name"]):
        errors["name"] = "at most 200 printable characters"
    if typed["project"] and not _PROJECT.fullmatch(typed["project"]):
        errors["project"] = ("letters, digits, _, . or -, starting with a letter or digit, at "
                             "most 64 characters")
    if errors:
        return await _keys_page(request, session, typed=typed, errors=errors, status=422)
    try:
        issued = await service.create_key(
            context(request), get_security(request), session.principal, Role(typed["role"]),
            name=typed["name"], project=typed["project"] or None, client_ip=client_ip(request))
    except NotInstallationAdmin as err:  # another project's key: the field says why not
        return await _keys_page(request, session, typed=typed, errors={"project": err.message},
                                status=403)
    return page(request, "key_created.html", {"issued": issued}, status=201)


@router.get("/keys/{key_id}/revoke")
async def confirm_revoke(request: Request, session: Ui, key_id: str) -> Response:
    """Ask before revoking: whoever uses the key is locked out at once."""
    need(session, "keys:admin")
    found = [k for k in await service.list_keys(get_security(request), session.principal)
             if k.key_id == key_id]
    if not found:
        raise NotFound(f"no key {key_id} in this project; see the keys page")
    return page(request, "key_revoke.html", {"key": found[0]})


@router.post("/keys/{key_id}/revoke")
async def revoke(request: Request, session: Ui, key_id: str) -> Response:
    """Revoke the key and the tokens issued for it."""
    await form_of(request, session, "keys:admin")
    await service.revoke_key(get_security(request), session.principal, key_id,
                             client_ip=client_ip(request))
    return RedirectResponse(f"/ui/keys?revoked={key_id}", status_code=303)


def _time(text: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A `datetime-local` field's value, read as UTC; an error next to the field if bad."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors[field] = "a date and time like 2026-12-07T15:30 (UTC)"
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@router.get("/audit")
async def audit(request: Request, session: Ui, actor: str = "", action: str = "",
                since: str = "", until: str = "", cursor: str | None = None) -> Response:
    """Who did what, when and from where, newest first; filtered by actor, action and time."""
    need(session, "audit:read")
    typed = {"actor": actor.strip()[:200], "action": action.strip(), "since": since.strip(),
             "until": until.strip()}
    errors: dict[str, str] = {}
    if typed["action"] and typed["action"] not in ACTIONS:
        errors["action"] = "choose an action from the list"
    start = _time(typed["since"], "since", errors)
    end = _time(typed["until"], "until", errors)
    if start and end and end <= start:
        errors["until"] = "must be after “since”"
    rows: list[dict[str, object]] = []
    nxt = None
    if not errors:
        where = AuditFilter(typed["actor"] or None, typed["action"] or None, None, start, end)
        found = await audit_service.list_audit(
            context(request), get_security(request), session.principal, where,
            after=after_cursor(cursor), limit=AUDIT_PAGE)
        rows = found[:AUDIT_PAGE]
        more = next_cursor(found, AUDIT_PAGE, "occurred_at", "event_id")
        if more:
            nxt = "?" + urlencode({**{k: v for k, v in typed.items() if v}, "cursor": more})
    return page(request, "audit.html", {"rows": rows, "typed": typed, "errors": errors,
                                        "actions": ACTIONS, "next_url": nxt},
                status=422 if errors else 200)
