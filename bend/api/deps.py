"""Request dependencies: the API context, the authenticated caller and read-your-writes waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from bend.api.context import ApiContext
from bend.api.problems import NotProjected
from bend.kafka.position import Position
from bend.security.dependencies import Security, authenticate, get_security
from bend.security.errors import ExpiredApiKey, RevokedApiKey, UnknownApiKey
from bend.security.roles import Permission, Principal, require

__all__ = ["Authenticated", "Context", "Sec", "consistent", "context", "permit", "principal"]

MAX_WAIT_S = 30.0


def context(request: Request) -> ApiContext:
    """The API context the lifespan opened."""
    ctx: ApiContext = request.app.state.bend
    return ctx


Context = Annotated[ApiContext, Depends(context)]
Sec = Annotated[Security, Depends(get_security)]


# Declared for the OpenAPI document (and so for clients and fuzzers); `authenticate` reads them.
_BEARER = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="An API key (`bend_...`) or an access token from POST /api/tokens")
_API_KEY = APIKeyHeader(name="X-Api-Key", auto_error=False, scheme_name="apiKey",
                        description="An API key (`bend_...`)")


async def principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    _api_key: Annotated[str | None, Depends(_API_KEY)],
) -> Principal:
    """The caller, from an API key or an access token (401 otherwise; 429 over a limit).

    A token names the key it was exchanged for; once that key is revoked or expired its tokens
    are refused too, so revoking a key takes effect at once rather than when its tokens expire.
    """
    caller = await authenticate(request)
    if caller.jti is not None and caller.key_id is not None:
        try:
            info = await get_security(request).keys.get(caller.project, caller.key_id)
        except UnknownApiKey:
            raise RevokedApiKey(caller.key_id) from None
        if info.revoked_at is not None:
            raise RevokedApiKey(caller.key_id)
        if not info.works_at(datetime.now(timezone.utc)):
            raise ExpiredApiKey(caller.key_id)
    return caller


Authenticated = Annotated[Principal, Depends(principal)]


def permit(permission: Permission | str) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller if its role grants `permission` (else 403)."""
    permission = Permission(permission)  # a typo fails at import

    async def _permitted(caller: Authenticated) -> Principal:
        return require(caller, permission)

    _permitted.__name__ = f"permit_{permission.value.replace(':', '_')}"
    return _permitted


async def consistent(
    ctx: Context,
    _caller: Authenticated,  # callers prove who they are before anything waits for them
    wait_for: Annotated[list[str] | None, Query(
        description="Log positions (`topic:partition:offset`, as command responses give them) "
                    "the read models must have applied before this request is answered.")] = None,
    x_bend_wait_for: Annotated[str | None, Header(
        description="The same as `wait_for`, comma-separated.")] = None,
    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S,
                                   description="How long to wait for them, in seconds.")] = 10.0,
) -> None:
    """Wait (bounded) until the read models hold the caller's own writes."""
    tokens = [*(wait_for or []), *filter(None, (x_bend_wait_for or "").split(","))]
    if not tokens:
        return
    positions = [Position.parse(t) for t in tokens]
    for position in positions:
        if position.topic not in ctx.projected:
            raise NotProjected(position.token, ctx.projected)
    await ctx.watcher.wait_for(positions, wait_s)
