"""Workflows: create one, give it a new version, activate, pause or delete it, and start a run
of it (its pinned version, its checked input, its idempotency key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bend.core.definitions import WorkflowDefinition, definition_hash
from bend.kafka.position import Position
from bend.security.roles import Principal, require
from bend.services.deps import Deps, WatchingDeps
from bend.services.errors import (
    IdempotencyConflict, UnknownVersion, UnknownWorkflow, WorkflowDeleted,
)
from bend.services.inputs import check_inputs
from bend.triggering import records
from projections.queries import runs as run_queries
from projections.queries import triggers as trigger_queries
from projections.queries import workflows as queries
from projections.queries.turns import take_turn

__all__ = [
    "STATUSES", "Started", "StatusChanged", "Written", "create_workflow", "get_workflow",
    "pinned", "set_status", "start_run", "version_workflow",
]

STATUSES = ("active", "paused", "deleted")
_VERSION_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Written:
    """A created or versioned workflow; `changed` False (and no `position`) when the definition
    equals the latest version's."""

    workflow_id: str
    version: int
    definition_hash: str
    changed: bool
    position: Position | None = None


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A workflow given a status; `changed` False when it already had it."""

    workflow_id: str
    status: str
    changed: bool
    position: Position | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """A run asked for (`position`: where its StartRun went), or the one an idempotency key
    already started (`position` None, `status` its status)."""

    run_id: str
    workflow_id: str
    workflow_version: int
    position: Position | None = None
    status: str | None = None

    @property
    def existed(self) -> bool:
        """Whether the idempotency key had already started this run (nothing was sent)."""
        return self.position is None


async def get_workflow(deps: Deps, principal: Principal, workflow_id: str, *,
                       live: bool = False) -> dict[str, Any]:
    """The workflow's row in the caller's project; `live`: refused if it was deleted."""
    row = await queries.get_workflow(deps.pool, principal.project, workflow_id)
    if row is None:
        raise UnknownWorkflow(workflow_id)
    if live and row["status"] == "deleted":
        raise WorkflowDeleted(workflow_id)
    return row


async def create_workflow(deps: Deps, principal: Principal, defn: WorkflowDefinition
                          ) -> Written:
    """A new workflow at version 1 with the (checked) definition `defn`."""
    require(principal, "workflows:write")
    workflow_id = records.new_id()
    event = records.registered(defn, workflow_id, deps.settings.tenant, principal, _now())
    position = await deps.producer.send(event)
    return Written(workflow_id, 1, event.definition_hash, True, position)


async def version_workflow(deps: WatchingDeps, principal: Principal, workflow_id: str,
                           defn: WorkflowDefinition) -> Written:
    """The workflow's next version with `defn` (none if it equals the latest); returns once the
    read models show it."""
    require(principal, "workflows:write")
    digest = definition_hash(defn)
    async with deps.pool.acquire() as conn, conn.transaction():
        # One version number per update, even with several API processes: take turns, and
        # hold the turn until the read models show this version.
        await take_turn(conn, f"bend.workflow.version:{workflow_id}")
        row = await get_workflow(deps, principal, workflow_id, live=True)
        latest = await queries.get_version(conn, workflow_id, row["latest_version"])
        if latest is not None and latest["definition_hash"] == digest:
            return Written(workflow_id, row["latest_version"], digest, False)
        version = row["latest_version"] + 1
        event = records.versioned(defn, workflow_id, version, deps.settings.tenant, principal,
                                  _now())
        position = await deps.producer.send(event)
        await deps.watcher.wait_for([position], timeout_s=_VERSION_WAIT_S)
    return Written(workflow_id, version, digest, True, position)


async def set_status(deps: Deps, principal: Principal, workflow_id: str, status: str
                     ) -> StatusChanged:
    """Give the workflow `status` (one of STATUSES); a deleted workflow takes none."""
    require(principal, "workflows:write")
    row = await get_workflow(deps, principal, workflow_id, live=True)
    if row["status"] == status:
        return StatusChanged(workflow_id, status, False)
    event = records.status_changed(status, workflow_id, row["latest_version"],
                                   deps.settings.tenant, principal, _now())
    position = await deps.producer.send(event)
    return StatusChanged(workflow_id, status, True, position)


async def pinned(deps: Deps, principal: Principal, workflow_id: str,
                 version: int | None) -> tuple[int, dict[str, Any]]:
    """The version a new run takes (`version`, else the latest) and its definition."""
    row = await get_workflow(deps, principal, workflow_id, live=True)
    wanted = version or row["latest_version"]
    found = await queries.get_version(deps.pool, workflow_id, wanted)
    if found is None:
        raise UnknownVersion(workflow_id, wanted, row["latest_version"])
    return wanted, found["definition"]


async def start_run(deps: Deps, principal: Principal, workflow_id: str, run_input: Any, *,
                    version: int | None = None,
                    idempotency_key: str | None = None) -> Started:
    """Ask for a run of the workflow with `run_input` (None: the manual trigger's default); the
    same `idempotency_key` always gives the same run."""
    require(principal, "workflows:execute")
    version, definition = await pinned(deps, principal, workflow_id, version)
    if run_input is None:  # a manual trigger's default_input fills a missing input
        run_input = await trigger_queries.manual_default_input(deps.pool, principal.project,
                                                               workflow_id)
    check_inputs(workflow_id, definition, [run_input], ["input"])
    run_id = records.run_id_for(workflow_id, idempotency_key)
    if idempotency_key is not None:
        existing = await run_queries.get_run(deps.pool, principal.project, run_id)
        if existing is not None:
            if existing["input"] != run_input or existing["workflow_version"] != version:
                raise IdempotencyConflict(idempotency_key, run_id)
            return Started(run_id, workflow_id, version, status=existing["status"])
    command = records.start_run(run_id, workflow_id, version, definition, run_input,
                                idempotency_key, deps.settings.tenant, principal, _now())
    position = await deps.producer.send(command)
    return Started(run_id, workflow_id, version, position)


def _now() -> datetime:
    return datetime.now(timezone.utc)
