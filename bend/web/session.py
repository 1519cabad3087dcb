"""Web UI sign-in: the `bend_session` cookie holds an access token; CSRF tokens derive from it.

Signing in with an API key verifies it with the API's key store and keeps a token issued for it
(so the key itself never sits in the browser); signing in with a token keeps that token. Each
request verifies the token as the API does, including that its key is not revoked or expired.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from fastapi import Request

from bend.security.apikeys import looks_like_key
from bend.security.dependencies import Security, client_ip, get_security
from bend.security.errors import (
    ExpiredApiKey, RevokedApiKey, SecurityError, Unauthenticated, UnknownApiKey,
)
from bend.security.roles import Permission, Principal, allows
from bend.web.errors import LoginRequired

__all__ = ["COOKIE", "Session", "csrf_token", "csrf_valid", "session_of", "sign_in"]

COOKIE = "bend_session"


@dataclass(frozen=True, slots=True)
class Session:
    """The signed-in caller: principal, display name and the token the cookie holds."""

    principal: Principal
    name: str
    token: str

    @property
    def csrf(self) -> str:
        """The CSRF token forms of this session carry."""
        return csrf_token(self.token)

    def can(self, permission: Permission | str) -> bool:
        """Whether the caller's role grants `permission` (actions it does not are not drawn)."""
        return allows(self.principal.role, permission)


def csrf_token(session_token: str) -> str:
    """A token bound to the session: only a page holding the cookie's value can compute it."""
    return hmac.new(session_token.encode(), b"bend-ui-csrf", hashlib.sha256).hexdigest()


def csrf_valid(session: Session, sent: str | None) -> bool:
    """Whether a form's `csrf_token` is the session's."""
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")


async def _checked(security: Security, principal: Principal) -> str:
    """The display name of a token's key; refuses tokens whose key is revoked or expired."""
    if principal.key_id is None:
        return principal.subject
    try:
        info = await security.keys.get(principal.project, principal.key_id)
    except UnknownApiKey:
        raise RevokedApiKey(principal.key_id) from None
    if info.revoked_at is not None:
        raise RevokedApiKey(principal.key_id)
    if not info.works_at(datetime.now(timezone.utc)):
        raise ExpiredApiKey(principal.key_id)
    return info.name or principal.key_id


async def sign_in(request: Request, credential: str, ttl_s: int) -> Session:
    """A session for an API key (a token is issued for it) or an access token; a typed
    Unauthenticated error saying why not."""
    security = get_security(request)
    await security.limits.check_ip(client_ip(request))
    credential = credential.strip()
    if not credential:
        raise Unauthenticated("enter an API key (bend_...) or an access token")
    if looks_like_key(credential):
        principal = await security.keys.verify(credential)
        token = security.tokens.issue(principal, ttl_s=ttl_s).token
        principal = security.tokens.verify(token)
    else:
        principal, token = security.tokens.verify(credential), credential
    name = await _checked(security, principal)
    return Session(principal, name, token)


async def session_of(request: Request) -> Session:
    """The request's session from its cookie, or LoginRequired (the page redirects)."""
    token = request.cookies.get(COOKIE)
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise LoginRequired(nxt)
    security = get_security(request)
    address = client_ip(request)
    await security.limits.check_ip(address, before_auth=True)
    try:
        principal = security.tokens.verify(token)
        name = await _checked(security, principal)
    except Unauthenticated as err:
        raise LoginRequired(nxt, str(err)) from None
    await security.limits.check_principal(principal, address)
    request.state.principal = principal
    return Session(principal, name, token)


def login_url(next_path: str, reason: str | None = None) -> str:
    """Where a request without a session goes."""
    url = f"/ui/login?next={quote(next_path, safe='/')}"
    return url + (f"&reason={quote(reason)}" if reason else "")


def safe_next(value: str | None) -> str:
    """A `next=` target that stays inside the UI (no open redirect)."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/runs"


# SecurityError is re-exported for the routes' except clauses.
__all__ += ["SecurityError", "login_url", "safe_next"]
