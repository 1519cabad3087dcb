"""The API's security state: the `sec_*` tables in a schema of their own, the Security bundle and
the first admin key.

The tables live outside the read models' schema on purpose: a rebuild fills a fresh read
schema and swaps to it, and keys, secrets and seen webhook deliveries must survive that. The
schema is named after the installation's topic prefix (`bend` -> `bend_security`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import FastAPI

from bend.api.errors import PROBLEM_JSON, problem_responses
from bend.security.bodylimit import ASGIApp, BodySizeLimit, Send, problem_body
from bend.security.dependencies import Security, build_security
from bend.security.errors import BodyTooLarge
from bend.security.keyfiles import load_keys
from bend.security.keystore import ApiKeyStore
from bend.security.schema import ensure_schema
from bend.settings import Settings
from projections.db import check_schema, create_pool, database_url

__all__ = ["ProblemBodySizeLimit", "RefuseNul", "bootstrap_key", "document_auth", "open_security",
           "security_pool", "security_schema"]


def security_schema(settings: Settings) -> str:
    """The schema holding the `sec_*` tables: `<topic prefix>_security`."""
    prefix = re.sub(r"[^a-z0-9_]", "_", settings.kafka.topic_prefix.lower())
    return check_schema(f"{prefix}_security"[:63])


@contextlib.asynccontextmanager
async def security_pool(settings: Settings, max_size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the security schema (created, with its tables, if missing)."""
    schema = security_schema(settings)
    url = database_url(settings)
    pool = await create_pool(url, schema, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn, conn.transaction():
            # Processes starting together would race on CREATE SCHEMA IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                               f"bend.security.schema:{schema}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await ensure_schema(pool)
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def open_security(settings: Settings) -> AsyncIterator[Security]:
    """The Security bundle over its own pool, for the app's lifespan."""
    async with security_pool(settings, max_size=max(2, settings.database.max_pool // 2)) as pool:
        yield await build_security(pool, settings)


async def bootstrap_key(settings: Settings, project: str | None = None) -> str | None:
    """A new admin key's full text if `project` (default: settings.project) has no active admin
    key, else None. Show it once: only its hash is stored."""
    async with security_pool(settings, max_size=1) as pool:
        store = ApiKeyStore(pool, load_keys(settings).api_key_pepper)
        issued = await store.bootstrap_admin(project or settings.project)
    return issued.key if issued else None


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
