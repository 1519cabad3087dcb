"""Component use cases: register a version in the catalogue (once per name@version, even with
several API processes), and register the installed Python components the catalogue lacks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog

from bend.components import Component
from bend.components.errors import InvalidComponent
from bend.core.events import ComponentRegistered
from bend.kafka.position import Position
from bend.security.roles import Principal, require
from bend.services.deps import Deps, WatchingDeps
from bend.services.errors import ApiError
from bend.services.inputs import nul_locations
from projections.queries import components as queries
from projections.queries.turns import take_turn

__all__ = [
    "INSTALLED_ACTOR", "ComponentVersionConflict", "InvalidComponentBody", "Registered",
    "UnknownComponentName", "UnknownComponentVersion", "declared", "register",
    "register_installed",
]

log = structlog.get_logger(__name__)

INSTALLED_ACTOR = "bend:installed"  # who registers the installed Python components
_REGISTER_WAIT_S = 10.0


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


@dataclass(frozen=True, slots=True)
class Registered:
    """A registered version; `changed` False (and no `position`) when it was there already."""

    component: Component
    changed: bool
    position: Position | None = None


def _catalogue_only(**_: Any) -> None:
    """Stands for the callable of a component known to the catalogue only."""


def declared(body: Mapping[str, Any]) -> Component:
    """The component a declaration (name, version, description, tags, input and output schemas)
    describes, checked by the same rules as `@component`, so a registered entry could be
    declared in Python too; InvalidComponentBody if it cannot be."""
    name, version = body["name"], body["version"]
    nuls = nul_locations(dict(body), "")
    if nuls:
        raise InvalidComponentBody(f"{name}@{version}".replace("\x00", "\\u0000"),
                                   f"{nuls[0].lstrip('.')} holds a NUL character (\\u0000), "
                                   "which cannot be stored; remove it")
    try:
        return Component(name=name, version=version, fn=_catalogue_only,
                         description=body["description"], tags=tuple(body["tags"]),
                         input_schema=body["input_schema"], output_schema=body["output_schema"])
    except InvalidComponent as err:
        raise InvalidComponentBody(f"{name}@{version}", err.reason) from None


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


async def register(deps: WatchingDeps, principal: Principal, comp: Component) -> Registered:
    """Register `comp` (again with the same declaration: no change; with another:
    ComponentVersionConflict); returns once the read model shows it."""
    require(principal, "components:write")
    tenant = deps.settings.tenant
    async with deps.pool.acquire() as conn, conn.transaction():
        # One body per version, even with several API processes: take turns, and hold the
        # turn until the read model shows this version.
        await take_turn(conn, f"bend.component:{tenant}:{comp.ref}")
        row = await queries.get_version(conn, tenant, comp.name, comp.version)
        if row is not None:
            if not _same(row, comp):
                raise ComponentVersionConflict(comp.ref)
            return Registered(comp, changed=False)
        position = await deps.producer.send(_event(comp, tenant, principal.project,
                                                   principal.subject))
        await deps.watcher.wait_for([position], timeout_s=_REGISTER_WAIT_S)
    return Registered(comp, changed=True, position=position)


async def register_installed(deps: Deps, components: Iterable[Component]) -> int:
    """Register the `components` the catalogue lacks (without waiting for the read model);
    how many were produced. One that differs from its registered version is only logged."""
    tenant, missing = deps.settings.tenant, []
    for comp in components:
        row = await queries.get_version(deps.pool, tenant, comp.name, comp.version)
        if row is None:
            missing.append(_event(comp, tenant, deps.settings.project, INSTALLED_ACTOR))
        elif not _same(row, comp):
            log.warning("installed_component_differs", ref=comp.ref,
                        hint="bump the version of a changed component; versions are immutable")
    if missing:
        await deps.producer.send_many(missing)
        log.info("installed_components_registered", refs=[f"{e.name}@{e.version}"
                                                          for e in missing])
    return len(missing)
