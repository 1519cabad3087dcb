"""Guards in front of every route: bodies over the limit (413), URLs holding NUL (400), and the
OpenAPI document saying what every operation may answer besides its own responses."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from bend.api.errors import PROBLEM_JSON, problem_responses
from bend.security.bodylimit import ASGIApp, BodySizeLimit, Send, problem_body
from bend.security.errors import BodyTooLarge

__all__ = ["ProblemBodySizeLimit", "RefuseNul", "document_auth"]


class ProblemBodySizeLimit(BodySizeLimit):
    """BodySizeLimit whose 413 carries the API's problem members (`error` beside `code`)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app, max_bytes, problem_type="urn:bend:problem:body_too_large")

    async def _reject(self, send: Send) -> None:
        err = BodyTooLarge(self.max_bytes)
        body = json.dumps({**json.loads(problem_body(err, self.problem_type)),
                           "title": "Body too large", "error": err.code}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class RefuseNul:
    """Answers 400 to a URL holding a NUL character (`%00`): Postgres stores no NUL in text, so
    such an id or filter could only fail deeper down."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope.get("path", "")
                                        or b"%00" in scope.get("query_string", b"")
                                        or b"\x00" in scope.get("query_string", b"")):
            body = json.dumps({
                "type": "urn:bend:problem:nul_in_url", "title": "Nul in url", "status": 400,
                "detail": "the URL holds a NUL character (%00) in its path or query; remove it",
                "instance": scope.get("path", "").replace("\x00", "%00"),
                "error": "nul_in_url"}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


_AUTH_STATUSES = (401, 403, 429)


def document_auth(app: FastAPI) -> None:
    """Say in the OpenAPI document what operations may answer besides their own: 400 (a URL
    holding NUL, or an unparsable body), 401, 403 and 429 where authenticated, and 413 where
    they take a body."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for operation in (op for ops in spec.get("paths", {}).values() for op in ops.values()):
            responses = operation.setdefault("responses", {})
            statuses = [400, *(_AUTH_STATUSES if operation.get("security") else ())]
            if "requestBody" in operation:
                statuses.append(413)
            for status in statuses:
                responses.setdefault(str(status), {
                    "description": problem_responses(status)[status]["description"],
                    "content": {PROBLEM_JSON: {
                        "schema": {"$ref": "#/components/schemas/Problem"}}}})
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
