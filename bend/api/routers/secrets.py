"""/api/secrets: named secrets of the caller's project; values go in, never out."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Path, Request, Response

from bend.api.deps import Sec, permit
from bend.api.errors import problem_responses
from bend.api.models.security import SecretList, SecretMeta, SecretValue
from bend.security.dependencies import client_ip
from bend.security.errors import UnknownSecret
from bend.security.roles import Principal
from bend.services import secrets as service

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/secrets", tags=["secrets"], responses=problem_responses(422))

Reader = Annotated[Principal, Depends(permit("secrets:read"))]
Writer = Annotated[Principal, Depends(permit("secrets:write"))]
Name = Annotated[str, Path(description="Letters, digits, `_`, `.`, `-`; at most 128",
                           pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]


@router.get("", response_model=SecretList)
async def list_secrets(caller: Reader, security: Sec) -> SecretList:
    """The project's secrets: names and times only."""
    return SecretList(items=[SecretMeta.of(s) for s in await security.secrets.list(
        caller.project)])


@router.get("/{name}", response_model=SecretMeta, responses=problem_responses(404))
async def get_secret(name: Name, caller: Reader, security: Sec) -> SecretMeta:
    """Whether the secret is set, and when; its value is never returned."""
    for info in await security.secrets.list(caller.project):
        if info.name == name:
            return SecretMeta.of(info)
    raise UnknownSecret(name)


@router.put("/{name}", response_model=SecretMeta,
            responses={**problem_responses(404),
                       201: {"model": SecretMeta, "description": "The secret was created"}})
async def put_secret(name: Name, body: SecretValue, request: Request, response: Response,
                     caller: Writer, security: Sec) -> SecretMeta:
    """Set the secret (encrypted at rest), replacing any earlier value, and/or the hosts it may
    be sent to; 201 when new."""
    info = await service.set_secret(security, caller, name, body.value,
                                    allowed_hosts=body.allowed_hosts, client_ip=client_ip(request))
    created = info.created_at == info.updated_at
    response.status_code = 201 if created else 200
    log.info("secret_set", name=name, project=caller.project, actor=caller.subject,
             created=created, value_changed=body.value is not None,
             allowed_hosts=info.allowed_hosts)
    return SecretMeta.of(info)


@router.delete("/{name}", status_code=204, responses=problem_responses(404))
async def delete_secret(name: Name, request: Request, caller: Writer, security: Sec) -> Response:
    """Delete the secret; steps and hooks that name it fail until it is set again."""
    await service.delete_secret(security, caller, name, client_ip=client_ip(request))
    log.info("secret_deleted", name=name, project=caller.project, actor=caller.subject)
    return Response(status_code=204)
