"""Starting a run of a workflow: its pinned version, its checked input, its idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bend.kafka.position import Position
from bend.security.roles import Principal, require
from bend.services.deps import Deps
from bend.services.errors import (
    IdempotencyConflict, UnknownVersion, UnknownWorkflow, WorkflowDeleted,
)
from bend.services.inputs import check_inputs
from bend.triggering import records
from projections.queries import runs as run_queries
from projections.queries import triggers as trigger_queries
from projections.queries import workflows as queries

__all__ = ["Started", "get_workflow", "pinned", "start_run"]


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
                                idempotency_key, deps.settings.tenant, principal,
                                datetime.now(timezone.utc))
    position = await deps.producer.send(command)
    return Started(run_id, workflow_id, version, position)
