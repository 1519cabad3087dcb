"""/api/components: register component versions and read the catalogue.

At start the API registers the installed Python components (`default_registry()`) the catalogue
lacks, so the UI and the CLI list what the executors can run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Response

from bend.api.context import ApiContext
from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.inputs import nul_locations
from bend.api.models.common import LogPosition
from bend.api.models.components import (
    ComponentDetail, ComponentPage, ComponentRequest, ComponentSummary, ComponentVersion,
    ComponentWritten,
)
from bend.api.problems import ApiError
from bend.components import Component, default_registry
from bend.components.errors import InvalidComponent
from bend.core.errors import BendError
from bend.core.events import ComponentRegistered
from bend.security.roles import Principal
from projections.queries import components as queries

__all__ = [
    "INSTALLED_ACTOR", "ComponentVersionConflict", "InvalidComponentBody", "UnknownComponentName",
    "UnknownComponentVersion", "register_installed", "router",
]

log = structlog.get_logger(__name__)

INSTALLED_ACTOR = "bend:installed"  # who registers the installed Python components


class UnknownComponentName(ApiError):
    """No component has this name."""

    code = "unknown_component"
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"component {name} not found; list components with GET /api/components "
                         "(`bend components list`), or register it with POST /api/components")
        self.name = name


class UnknownComponentVersion(ApiError):
    """The component has no such version."""

    status = 404

    def __init__(self, name: str, version: str, known: Iterable[str]) -> None:
        super().__init__(f"component {name} has no version {version}; its versions are "
                         f"{', '.join(known)}")
        self.name = name
        self.version = version


class ComponentVersionConflict(ApiError):
    """name@version is registered already with another description, tags or schemas."""

    status = 409

    def __init__(self, ref: str) -> None:
        super().__init__(f"component {ref} is registered already with another description, "
                         "tags or schemas; versions are immutable, so register the change as a "
                         "new version")
        self.ref = ref


class InvalidComponentBody(ApiError):
    """A component declaration the catalogue cannot take (name, version or JSON Schemas)."""

    code = "invalid_component"
    status = 422

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"component {ref} is declared wrongly: {reason}; fix it and register "
                         "it again")
        self.ref = ref
        self.reason = reason


def _catalogue_only(**_: Any) -> None:
    """Stands for the callable of a component known to the catalogue only."""


def _checked(body: ComponentRequest) -> Component:
    # The same rules as `@component`, so a registered entry could be declared in Python too.
    nuls = nul_locations(body.model_dump(), "")
    if nuls:
        raise InvalidComponentBody(f"{body.name}@{body.version}".replace("\x00", "\\u0000"),
                                   f"{nuls[0].lstrip('.')} holds a NUL character (\\u0000), "
                                   "which cannot be stored; remove it")
    try:
        return Component(name=body.name, version=body.version, fn=_catalogue_only,
                         description=body.description, tags=tuple(body.tags),
                         input_schema=body.input_schema, output_schema=body.output_schema)
    except InvalidComponent as err:
        raise InvalidComponentBody(f"{body.name}@{body.version}", err.reason) from None


def _same(row: dict[str, Any], comp: Component) -> bool:
    return (row["description"] == comp.description
            and sorted(set(row["tags"])) == sorted(set(comp.tags))
            and row["input_schema"] == dict(comp.input_schema)
            and row["output_schema"] == (dict(comp.output_schema) if comp.output_schema
                                         else None))


def _event(comp: Component, tenant: str, project: str, actor: str) -> ComponentRegistered:
    return ComponentRegistered(
        event_id=str(uuid.uuid4()), workflow_id=f"component:{comp.name}",
        occurred_at=datetime.now(timezone.utc), tenant=tenant, project=project, name=comp.name,
        version=comp.version, description=comp.description, tags=list(comp.tags),
        input_schema=dict(comp.input_schema),
        output_schema=dict(comp.output_schema) if comp.output_schema else None, actor=actor)


async def register_installed(ctx: ApiContext, components: Iterable[Component]) -> int:
    """Register the `components` the catalogue lacks (without waiting for the read model);
    how many were produced. One that differs from its registered version is only logged."""
    tenant, missing = ctx.settings.tenant, []
    for comp in components:
        row = await queries.get_version(ctx.pool, tenant, comp.name, comp.version)
        if row is None:
            missing.append(_event(comp, tenant, ctx.settings.project, INSTALLED_ACTOR))
        elif not _same(row, comp):
            log.warning("installed_component_differs", ref=comp.ref,
                        hint="bump the version of a changed component; versions are immutable")
    if missing:
        await ctx.producer.send_many(missing)
        log.info("installed_components_registered", refs=[f"{e.name}@{e.version}"
                                                          for e in missing])
    return len(missing)


@contextlib.asynccontextmanager
async def _register_at_start(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan, so the context is open. A failure here must not
    # stop the API: the catalogue only misses the installed components until the next start.
    try:
        await register_installed(app.state.bend, default_registry().list())
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
    comp = _checked(body)
    tenant = ctx.settings.tenant
    async with ctx.pool.acquire() as conn, conn.transaction():
        # One body per version, even with several API processes: take turns, and hold the
        # turn until the read model shows this version.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           f"bend.component:{tenant}:{comp.ref}")
        row = await queries.get_version(conn, tenant, comp.name, comp.version)
        if row is not None:
            if not _same(row, comp):
                raise ComponentVersionConflict(comp.ref)
            response.status_code = 200
            return ComponentWritten(ref=comp.ref, name=comp.name, version=comp.version,
                                    changed=False)
        position = await ctx.producer.send(_event(comp, tenant, principal.project,
                                                  principal.subject))
        await ctx.watcher.wait_for([position], timeout_s=10.0)
    response.headers["Location"] = f"/api/components/{comp.name}/{comp.version}"
    response.headers["X-Bend-Position"] = position.token
    return ComponentWritten(ref=comp.ref, name=comp.name, version=comp.version, changed=True,
                            position=LogPosition.of(position))


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
