"""What every UI route shares: HTML errors, the session dependency, CSRF and permissions."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from bend.api.context import ApiContext
from bend.api.errors import status_for
from bend.core.errors import BendError
from bend.security.errors import SecurityError
from bend.security.roles import Permission
from bend.web.errors import CsrfRefused, Forbidden, LoginRequired, UiError
from bend.web.render import page
from bend.web.session import Session, csrf_valid, login_url, session_of

__all__ = ["Ui", "UiRoute", "context", "error_page", "form_of", "need"]

log = structlog.get_logger(__name__)

_TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found",
           409: "Conflict", 413: "Too large", 415: "Unsupported", 422: "Check the form",
           429: "Slow down", 500: "Server error", 503: "Unavailable"}


def error_page(request: Request, status: int, message: str, title: str | None = None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """The error page: a title, what happened and what to do."""
    return page(request, "error.html", {"status": status, "title": title or
                                        _TITLES.get(status, "Error"), "message": message},
                status=status, headers=headers)


class UiRoute(APIRoute):
    """A route answering errors as pages: no session redirects to sign-in, others render."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped."""
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequired as err:
                return RedirectResponse(login_url(err.next_path, err.reason), status_code=303)
            except UiError as err:
                return error_page(request, err.status, err.message, err.title)
            except SecurityError as err:
                return error_page(request, err.status, err.message, headers=err.headers)
            except BendError as err:
                status = status_for(err)
                if status >= 500:
                    log.warning("ui_error", error_type=type(err).__name__, error=str(err)[:500])
                return error_page(request, status, err.message)
            except RequestValidationError as err:
                fields = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}"
                                   for e in err.errors())
                return error_page(request, 422, f"the request does not fit this page: {fields}")

        return handler


def context(request: Request) -> ApiContext:
    """The API context (pool, producer, watcher) the app's lifespan opened."""
    ctx: ApiContext = request.app.state.bend
    return ctx


async def _ui_session(request: Request) -> Session:
    session = await session_of(request)
    request.state.ui_session = session
    return session


Ui = Annotated[Session, Depends(_ui_session)]


def need(session: Session, permission: Permission | str) -> None:
    """Forbidden (a 403 page) unless the session's role grants `permission`."""
    if not session.can(permission):
        raise Forbidden(session.principal.role.value, str(permission))


async def form_of(request: Request, session: Session, permission: Permission | str
                  ) -> FormData:
    """A state-changing form's fields, once its permission and CSRF token are checked."""
    need(session, permission)
    form = await request.form()
    token = form.get("csrf_token")
    if not csrf_valid(session, token if isinstance(token, str) else None):
        raise CsrfRefused()
    return form


__all__ += ["LoginRequired"]
