"""FastAPI wiring: the `Security` bundle on `app.state`, `authenticate` and `allow(permission)`.

    app.state.security = await build_security(pool, settings)        # in the lifespan
    @router.post("/workflows")
    async def create(..., principal: Principal = Depends(allow("workflows:write"))): ...

Every error raised here is a SecurityError: answer `err.status` with `err.headers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from fastapi import Depends, Request

from bend.mcp.store import McpServerStore
from bend.security.apikeys import looks_like_key
from bend.security.adminlog import AdminLog
from bend.security.denials import DenialLog
from bend.security.errors import MissingCredentials, SecurityError
from bend.security.keyfiles import SecurityKeys, load_keys
from bend.security.keystore import ApiKeyStore
from bend.security.ratelimit import RateLimits
from bend.security.roles import Permission, Principal, require
from bend.security.schema import ensure_schema
from bend.security.secretstore import SecretStore
from bend.security.tokens import TokenService
from bend.security.webhooks import PostgresReplayGuard, ReplayGuard
from bend.settings import SecuritySettings, Settings

__all__ = ["Security", "build_security", "get_security", "authenticate", "allow", "client_ip"]


@dataclass(frozen=True, slots=True)
class Security:
    """Everything the API needs to authenticate, authorise, limit and keep secrets."""

    keys: ApiKeyStore
    tokens: TokenService
    limits: RateLimits
    secrets: SecretStore
    webhook_guard: ReplayGuard
    denials: DenialLog
    settings: SecuritySettings
    mcp_servers: McpServerStore  # the projects' registered MCP servers, beside their secrets
    admin_log: AdminLog


async def build_security(
    pool: asyncpg.Pool, settings: Settings, keys: SecurityKeys | None = None
) -> Security:
    """Create the `sec_*` tables if needed and the stores over `pool`, with the server keys."""
    await ensure_schema(pool)
    keys = keys or load_keys(settings)
    sec = settings.security
    return Security(
        keys=ApiKeyStore(pool, keys.api_key_pepper),
        tokens=TokenService(
            keys.jwt_secret, issuer=sec.jwt_issuer, audience=sec.jwt_audience,
            ttl_s=sec.token_ttl_s,
        ),
        limits=RateLimits.from_settings(sec, pool=pool),
        secrets=SecretStore(pool, keys.secrets_key),
        webhook_guard=PostgresReplayGuard(pool),
        denials=DenialLog(pool),
        settings=sec,
        mcp_servers=McpServerStore(pool),
        admin_log=AdminLog(pool),
    )


def get_security(request: Request) -> Security:
    """The app's Security bundle (set `app.state.security` in the lifespan)."""
    security: Security | None = getattr(request.app.state, "security", None)
    if security is None:
        raise RuntimeError(
            "app.state.security is not set; assign `await build_security(pool, settings)` "
            "in the app's lifespan"
        )
    return security


def client_ip(request: Request) -> str:
    """The peer address. X-Forwarded-For is not trusted: any client can write it."""
    return request.client.host if request.client else "unknown"


def _credential(request: Request) -> str | None:
    """The bearer credential: `Authorization: Bearer <x>`, else `X-Api-Key: <x>`."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key", "").strip() or None


async def authenticate(request: Request) -> Principal:
    """The request's principal from an API key (`bend_...`) or an access token.

    The address limit comes first, so key guessing is throttled too; the key limit after.
    The principal is also left on `request.state.principal` for logging.
    """
    security = get_security(request)
    address = client_ip(request)
    await security.limits.check_ip(address, before_auth=True)
    try:
        credential = _credential(request)
        if credential is None:
            raise MissingCredentials()
        if looks_like_key(credential):
            principal = await security.keys.verify(credential)
        else:
            principal = security.tokens.verify(credential)
    except SecurityError:
        await security.limits.spend_ip(address)
        raise
    await security.limits.check_principal(principal, address)
    request.state.principal = principal
    return principal


def allow(permission: Permission | str) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the authenticated principal if its role grants `permission`."""
    permission = Permission(permission)  # a typo fails at import, not at request time

    async def _allowed(principal: Principal = Depends(authenticate)) -> Principal:
        return require(principal, permission)

    _allowed.__name__ = f"allow_{permission.value.replace(':', '_')}"
    return _allowed
