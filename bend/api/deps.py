"""Request dependencies: the API context, the caller (principal) and read-your-writes waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from bend.api.context import ApiContext
from bend.api.problems import NotProjected
from bend.kafka.position import Position
from bend.security.roles import Permission, Principal, Role, require

__all__ = ["Context", "consistent", "context", "local_principal", "permit"]

MAX_WAIT_S = 30.0


def context(request: Request) -> ApiContext:
    """The API context the lifespan opened."""
    return request.app.state.bend


Context = Annotated[ApiContext, Depends(context)]


def local_principal(request: Request) -> Principal:
    """The caller, until authentication is wired in: the local admin of the settings' project.

    The security layer replaces this one dependency (`app.dependency_overrides`, or here) with
    one that authenticates; routes only ever ask `permit(...)`.
    """
    settings = request.app.state.bend.settings
    return Principal(subject="local", project=settings.project, role=Role.ADMIN)


def permit(permission: Permission | str) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller if its role grants `permission` (else 403)."""
    permission = Permission(permission)  # a typo fails at import

    async def _permitted(principal: Principal = Depends(local_principal)) -> Principal:
        return require(principal, permission)

    _permitted.__name__ = f"permit_{permission.value.replace(':', '_')}"
    return _permitted


async def consistent(
    ctx: Context,
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
