"""/api/tokens: exchange an API key for a short-lived access token (JWT)."""

from __future__ import annotations

import time

import structlog
from fastapi import APIRouter

from bend.api.deps import Authenticated, Sec
from bend.api.errors import problem_responses
from bend.api.models.security import TokenIssued, TokenRequest
from bend.security.errors import SecurityError

__all__ = ["KeyRequired", "router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/tokens", tags=["auth"], responses=problem_responses(400, 422))


class KeyRequired(SecurityError):
    """A token was presented where only an API key may be: tokens do not renew themselves."""

    code = "api_key_required"
    status = 400

    def __init__(self) -> None:
        super().__init__("exchange an API key for a token (`Authorization: Bearer bend_...`); "
                         "a token cannot be exchanged for another, request a new one with the key")


@router.post("", status_code=201, response_model=TokenIssued)
async def issue_token(caller: Authenticated, security: Sec,
                      body: TokenRequest | None = None) -> TokenIssued:
    """An access token for the caller's API key, with its project and role."""
    if caller.jti is not None or caller.key_id is None:
        raise KeyRequired()
    ttl = min((body or TokenRequest()).ttl_s or security.settings.token_ttl_s,
              security.settings.token_ttl_s)
    issued = security.tokens.issue(caller, ttl_s=ttl)
    log.info("token_issued", key_id=caller.key_id, jti=issued.jti, project=caller.project)
    return TokenIssued(access_token=issued.token, expires_in=max(0, issued.expires_at -
                                                                 int(time.time())),
                       expires_at=issued.expires_at, project=caller.project, role=caller.role)
