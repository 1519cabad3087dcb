"""Sign in and out of the web UI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from bend.security.errors import RateLimited, SecurityError
from bend.web.render import page
from bend.web.routes.common import Ui, UiRoute, form_of
from bend.web.session import COOKIE, safe_next, sign_in

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


def _login(request: Request, next_path: str, error: str | None = None,
           status: int = 200) -> Response:
    return page(request, "login.html", {"next": next_path, "error": error}, status=status)


@router.get("")
@router.get("/")
async def home() -> Response:
    """The UI starts at the runs list."""
    return RedirectResponse("/ui/runs", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None,
                     reason: str | None = None) -> Response:
    """The sign-in form (with why the last session ended, if it did)."""
    return _login(request, safe_next(next), reason[:300] if reason else None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the credential with the API's own auth and keep a session cookie."""
    form = await request.form()
    credential = str(form.get("credential") or "")
    next_path = safe_next(str(form.get("next") or ""))
    ttl = request.app.state.bend.settings.api.ui_session_ttl_s
    try:
        session = await sign_in(request, credential, ttl)
    except RateLimited as err:
        return _login(request, next_path, err.message, status=429)
    except SecurityError as err:
        return _login(request, next_path, f"Sign-in failed: {err.message}", status=401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(COOKIE, session.token, max_age=ttl, path="/ui", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request, session: Ui) -> Response:
    """Forget the session cookie."""
    await form_of(request, session, "runs:read")
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
