"""/api/components: register component versions and read the catalogue.

At start the API registers the installed Python components (`default_registry()`) the catalogue
lacks, so the UI and the CLI list what the executors can run. The use cases are
bend.services.components; these routes translate HTTP.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Response

from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.models.common import LogPosition
from bend.api.models.components import (
    ComponentDetail, ComponentPage, ComponentRequest, ComponentSummary, ComponentVersion,
    ComponentWritten,
)
from bend.components import default_registry
from bend.core.errors import BendError
from bend.security.roles import Principal
from bend.services import components as service
from bend.services.components import UnknownComponentName, UnknownComponentVersion
from projections.queries import components as queries

__all__ = ["router"]

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def _register_at_start(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan, so the context is open. A failure here must not
    # stop the API: the catalogue only misses the installed components until the next start.
    try:
        await service.register_installed(app.state.bend, default_registry().list())
    except (BendError, ImportError) as err:
        log.warning("installed_components_not_registered", error_type=type(err).__name__,
                    error=str(err)[:500])
    yield


router = APIRouter(prefix="/api/components", tags=["components"],
                   dependencies=[Depends(consistent)], lifespan=_register_at_start,
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("components:read"))]
Writer = Annotated[Principal, Depends(permit("components:write"))]


@router.post("", status_code=201, response_model=ComponentWritten,
             responses={**problem_responses(409),
                        200: {"model": ComponentWritten,
                              "description": "This exact version was registered already"}})
async def register_component(body: ComponentRequest, response: Response, ctx: Context,
                             principal: Writer) -> ComponentWritten:
    """Register `name@version` with its JSON Schemas (again with the same body: no change)."""
    registered = await service.register(ctx, principal, service.declared(body.model_dump()))
    comp = registered.component
    if not registered.changed:
        response.status_code = 200
        return ComponentWritten(ref=comp.ref, name=comp.name, version=comp.version,
                                changed=False)
    assert registered.position is not None
    response.headers["Location"] = f"/api/components/{comp.name}/{comp.version}"
    response.headers["X-Bend-Position"] = registered.position.token
    return ComponentWritten(ref=comp.ref, name=comp.name, version=comp.version, changed=True,
                            position=LogPosition.of(registered.position))


@router.get("", response_model=ComponentPage)
async def list_components(
    ctx: Context, _caller: Reader,
    q: Annotated[str | None, Query(max_length=200,
                                   description="Words that the name or description holds")]
    = None,
    tag: Annotated[list[str] | None, Query(description="Tags each listed component carries")]
    = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ComponentPage:
    """Components by name, each with its versions and its newest version's description."""
    found = await queries.list_components(ctx.pool, ctx.settings.tenant, search=q, tag=tag,
                                          after=cursor, limit=limit + 1)
    names = list(found)[:limit]
    items = []
    for name in names:
        latest = found[name][-1]
        items.append(ComponentSummary(
            name=name, latest_version=latest["version"],
            versions=[r["version"] for r in found[name]], description=latest["description"],
            tags=latest["tags"], registered_at=latest["registered_at"]))
    return ComponentPage(items=items, next_cursor=names[-1] if len(found) > limit else None)


@router.get("/{name}", response_model=ComponentDetail, responses=problem_responses(404))
async def get_component(ctx: Context, _caller: Reader, name: str) -> ComponentDetail:
    """A component with every version and its schemas, oldest version first."""
    rows = await queries.versions(ctx.pool, ctx.settings.tenant, name)
    if not rows:
        raise UnknownComponentName(name)
    return ComponentDetail(name=name, latest_version=rows[-1]["version"],
                           versions=[ComponentVersion.of(r) for r in rows])


@router.get("/{name}/{version}", response_model=ComponentVersion,
            responses=problem_responses(404))
async def get_component_version(ctx: Context, _caller: Reader, name: str,
                                version: str) -> ComponentVersion:
    """One component version with its schemas."""
    row = await queries.get_version(ctx.pool, ctx.settings.tenant, name, version)
    if row is None:
        known = [r["version"] for r in await queries.versions(ctx.pool, ctx.settings.tenant,
                                                              name)]
        if not known:
            raise UnknownComponentName(name)
        raise UnknownComponentVersion(name, version, known)
    return ComponentVersion.of(row)
