"""Secrets: names and the workflows that use them; set or rotate a value (never shown again),
delete after a confirmation naming its users. Through bend.services.secrets, as the API's."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.security.dependencies import client_ip, get_security
from bend.security.errors import InvalidSecretName
from bend.security.secretstore import check_host_pattern, check_secret_name
from bend.services import secrets as service
from bend.web.errors import BadForm, NotFound
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from bend.web.session import Session

__all__ = ["router"]

router = APIRouter(prefix="/ui/secrets", route_class=UiRoute, include_in_schema=False)

VALUE_CHARS = 64 * 1024


async def _page(request: Request, session: Session, *, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, saved: str | None = None,
                deleted: str | None = None, status: int = 200) -> Response:
    rows = await service.list_secrets(context(request), get_security(request),
                                      session.principal)
    return page(request, "secrets.html", {
        "rows": rows, "typed": typed or {}, "errors": errors or {}, "saved": saved,
        "deleted": deleted, "can_write": session.can("secrets:write")}, status=status)


@router.get("")
async def secrets(request: Request, session: Ui, saved: str | None = None,
                  deleted: str | None = None) -> Response:
    """The project's secrets by name, with the workflows whose definitions name them."""
    need(session, "secrets:read")
    return await _page(request, session, saved=saved, deleted=deleted)


def _checked(name: str, value: str, hosts_text: str) -> tuple[dict[str, str], list[str] | None]:
    """The form's errors by field, and the allowed hosts (None: any host)."""
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "enter a name"
    else:
        try:
            check_secret_name(name)
        except InvalidSecretName as err:
            errors["name"] = err.message
    if not value:
        errors["value"] = "enter the value"
    elif len(value) > VALUE_CHARS:
        errors["value"] = f"the value is longer than {VALUE_CHARS:,} characters"
    hosts = [h for h in hosts_text.replace(",", " ").split() if h]
    for host in hosts:
        try:
            check_host_pattern(host)
        except ValueError as err:
            errors["allowed_hosts"] = str(err)
            break
    return errors, hosts or None


@router.post("")
async def set_secret(request: Request, session: Ui) -> Response:
    """Set or rotate a secret's value; the value is never shown again."""
    form = await form_of(request, session, "secrets:write")
    name = str(form.get("name") or "").strip()
    value = str(form.get("value") or "")
    hosts_text = str(form.get("allowed_hosts") or "").strip()
    errors, hosts = _checked(name, value, hosts_text)
    back = str(form.get("back") or "")
    if errors:
        # The value is not echoed back: a secret never goes into a page, even one refused.
        if back == "rotate" and "name" not in errors:
            return await _rotate_page(request, session, name, errors=errors,
                                      typed={"allowed_hosts": hosts_text}, status=422)
        return await _page(request, session, typed={"name": name, "allowed_hosts": hosts_text},
                           errors=errors, status=422)
    await service.set_secret(get_security(request), session.principal, name, value,
                             allowed_hosts=hosts, client_ip=client_ip(request))
    return RedirectResponse(f"/ui/secrets?saved={quote(name)}", status_code=303)


async def _rotate_page(request: Request, session: Session, name: str, *,
                       errors: dict[str, str] | None = None,
                       typed: dict[str, str] | None = None, status: int = 200) -> Response:
    rows = {r.info.name: r for r in await service.list_secrets(
        context(request), get_security(request), session.principal)}
    if name not in rows:
        raise NotFound(f"no secret is named {name!r}; set it on the secrets page")
    row = rows[name]
    shown_hosts = " ".join(row.info.allowed_hosts or ())
    return page(request, "secret.html", {
        "row": row, "errors": errors or {},
        "typed": typed or {"allowed_hosts": shown_hosts}}, status=status)


@router.get("/{name}")
async def rotate(request: Request, session: Ui, name: str) -> Response:
    """One secret: its users and a form to rotate its value."""
    need(session, "secrets:write")
    return await _rotate_page(request, session, name)


@router.get("/{name}/delete")
async def confirm_delete(request: Request, session: Ui, name: str) -> Response:
    """Ask before deleting: the workflows that name the secret will fail without it."""
    need(session, "secrets:write")
    users = await service.users_of(context(request), session.principal, name)
    return page(request, "secret_delete.html", {"name": name, "users": users})


@router.post("/{name}/delete")
async def delete(request: Request, session: Ui, name: str) -> Response:
    """Delete the secret (the confirmation page's form)."""
    form = await form_of(request, session, "secrets:write")
    if form.get("confirm") != name:
        raise BadForm(f"confirm by submitting the confirmation form for {name!r}")
    await service.delete_secret(get_security(request), session.principal, name,
                                client_ip=client_ip(request))
    return RedirectResponse(f"/ui/secrets?deleted={quote(name)}", status_code=303)
