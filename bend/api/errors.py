"""RFC 9457 problem details for every error: a typed BendError answers with its own `status`
(and `retry_after`), nothing else leaks.

A body looks like `{"type": "urn:bend:problem:unknown_run", "title": "Unknown run",
"status": 404, "detail": "...", "instance": "/api/executions/r1", "error": "unknown_run",
"run_id": "r1"}`; `error` is the code clients branch on, the ids beside it are the error's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bend.api import problems as p
from bend.core.errors import BendError
from bend.core.problems import InvalidDefinition
from bend.core.triggers.errors import InvalidTrigger
from bend.security.denials import UNAUTHENTICATED, Denial

__all__ = ["PROBLEM_JSON", "Problem", "install_error_handlers", "problem_responses",
           "status_for"]

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"



class Problem(BaseModel):
    """An RFC 9457 problem; extension members (`error`, ids, `errors`) ride along."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    error: str


def status_for(err: BendError) -> int:
    """The HTTP status of a typed error: its own `status` (500 unless it says otherwise)."""
    return err.status


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem statuses a route can answer."""
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}},
                "description": _TITLES.get(s, "Error")} for s in statuses}


_TITLES = {400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found",
           409: "Conflict", 413: "Too large", 415: "Unsupported media type",
           422: "Unprocessable content", 429: "Too many requests", 500: "Server error",
           503: "Unavailable"}


def _problem(request: Request, status: int, code: str, detail: str,
             extra: dict[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    # The standard members win over an error's own attributes of the same name.
    body = {**(extra or {}), "type": f"urn:bend:problem:{code}",
            "title": code.replace("_", " ").capitalize(), "status": status, "detail": detail,
            "instance": request.url.path, "error": code}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _members(err: BendError) -> dict[str, Any]:
    """The error's own ids and values: plain public attributes."""
    out: dict[str, Any] = {}
    for name, value in vars(err).items():
        if name.startswith("_") or name in ("message", "args", "code", "status"):
            continue
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[name] = value
    return out


async def _bend_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, BendError)
    status = status_for(err)
    extra = _members(err)
    if isinstance(err, InvalidDefinition):
        extra["errors"] = [{"location": q.location, "message": q.message, "code": q.code}
                           for q in err.problems]
    elif isinstance(err, p.InvalidInput):
        extra["errors"] = [{"location": where, "message": what} for where, what in err.problems]
    elif isinstance(err, InvalidTrigger):  # problems read `<location>: <message>`
        extra["errors"] = [dict(zip(("location", "message"), q.split(": ", 1), strict=False))
                           if ": " in q else {"location": "", "message": q}
                           for q in err.problems]
    headers = dict(getattr(err, "headers", None) or {})
    if err.retry_after is not None:
        headers.setdefault("Retry-After", err.retry_after)
    if status >= 500:
        log.error("request_failed", error=err.code, path=request.url.path, detail=err.message)
    if status in (401, 403):
        await _record_denial(request, status, err.code)
    return _problem(request, status, err.code, err.message, extra, headers)


async def _record_denial(request: Request, status: int, code: str) -> None:
    """Keep a refused API request for the audit log (GET /api/audit); never fails the answer."""
    security = getattr(request.app.state, "security", None)
    if security is None or not request.url.path.startswith("/api/"):
        return
    principal = getattr(request.state, "principal", None)
    try:
        await security.denials.record(Denial(
            status=status, code=code, method=request.method, path=request.url.path,
            client_ip=request.client.host if request.client else "unknown",
            project=principal.project if principal else None,
            actor=principal.subject if principal else UNAUTHENTICATED))
    except Exception:
        log.warning("denial_not_recorded", path=request.url.path, status=status)


async def _validation_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    errors = [{"location": ".".join(str(part) for part in e["loc"]), "message": e["msg"],
               "code": e["type"]} for e in err.errors()]
    listed = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return _problem(request, 422, "invalid_request",
                    f"the request does not match this endpoint's schema ({listed}); see "
                    "/openapi.json", {"errors": errors})


async def _http_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
    detail = {404: f"no endpoint at {request.url.path}; see /docs for the API's paths",
              405: f"{request.method} is not allowed on {request.url.path}; see /docs"}
    headers = err.headers
    if err.status_code == 405:  # Starlette names the methods of the first route matched only
        headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
    return _problem(request, err.status_code, code,
                    detail.get(err.status_code, str(err.detail)), headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> list[str]:
    """Every method some route of the app answers on the request's path (asked of the routes
    themselves, so included routers are covered)."""
    return [method for method in _METHODS
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                   for route in request.app.router.routes)]


async def _unexpected(request: Request, err: Exception) -> JSONResponse:
    log.exception("request_crashed", path=request.url.path, error_type=type(err).__name__)
    return _problem(request, 500, "internal_error",
                    "the server failed unexpectedly; the error is logged with this path, "
                    "retry later or report it")


async def _too_deep(request: Request, err: Exception) -> JSONResponse:
    # json.loads and pydantic recurse once per level: a body nested ~1,000 deep gets here.
    return _problem(request, 400, "body_too_deep",
                    "the body nests objects or lists too deeply to read; flatten it (at most "
                    "64 levels)")


def _openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI where problem responses are application/problem+json only (FastAPI files a
    response model under the route's own media type, application/json)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for path in spec.get("paths", {}).values():
            for operation in path.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_JSON in content and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = spec
        return spec

    return openapi


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as application/problem+json, and say so in the OpenAPI."""
    app.openapi = _openapi_with_problems(app)  # type: ignore[method-assign]
    app.add_exception_handler(BendError, _bend_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unexpected)
