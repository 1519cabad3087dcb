"""/api/keys: list, create and revoke the API keys of the caller's project (admins only)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response

from bend.api.deps import Context, Sec, permit
from bend.api.errors import problem_responses
from bend.api.models.security import KeyCreated, KeyInfo, KeyList, KeyRequest
from bend.security.dependencies import client_ip
from bend.security.roles import Principal
from bend.services import keys as service

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/keys", tags=["keys"], responses=problem_responses(403, 422))

Admin = Annotated[Principal, Depends(permit("keys:admin"))]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@router.get("", response_model=KeyList)
async def list_keys(caller: Admin, security: Sec) -> KeyList:
    """Every key of the project (revoked and expired ones too), oldest first."""
    now = _now()
    return KeyList(items=[KeyInfo.of(k, now) for k in await service.list_keys(security, caller)])


@router.post("", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyRequest, request: Request, response: Response, caller: Admin,
                     security: Sec, ctx: Context) -> KeyCreated:
    """A new key of the project (or, for installation admins, of `project`: how a project
    begins) with `role`; the response is the only time `key` is shown."""
    issued = await service.create_key(ctx, security, caller, body.role, name=body.name,
                                      project=body.project, expires_at=body.expires_at,
                                      client_ip=client_ip(request))
    log.info("api_key_created", key_id=issued.info.key_id, role=body.role.value,
             project=issued.info.project, actor=caller.subject, actor_project=caller.project)
    response.headers["Location"] = f"/api/keys/{issued.info.key_id}"
    response.headers["Cache-Control"] = "no-store"
    info = KeyInfo.of(issued.info, _now())
    return KeyCreated(**info.model_dump(), key=issued.key)


@router.delete("/{key_id}", response_model=KeyInfo, responses=problem_responses(404))
async def revoke_key(key_id: str, request: Request, caller: Admin, security: Sec) -> KeyInfo:
    """Revoke the key and the tokens issued for it (again: no change)."""
    info = await service.revoke_key(security, caller, key_id, client_ip=client_ip(request))
    log.info("api_key_revoked", key_id=key_id, project=caller.project, actor=caller.subject)
    return KeyInfo.of(info, _now())
