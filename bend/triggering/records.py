"""The events and commands that start and stop runs and register workflows; ids and time arrive
as arguments (the API and the trigger workers build them alike)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bend.core.commands import CancelRun, StartRun
from bend.core.definitions import WorkflowDefinition, definition_hash, definition_json
from bend.core.events import (
    WorkflowActivated, WorkflowDeleted, WorkflowPaused, WorkflowRegistered, WorkflowVersioned,
)
from bend.security.roles import Principal

__all__ = [
    "STATUS_EVENTS", "cancel_run", "new_id", "registered", "run_id_for", "start_run",
    "status_changed", "versioned",
]

_RUNS = uuid.UUID("0b5e7c1a-3f7d-4b8e-a1c2-9d4e5f6a7b8c")  # namespace of idempotent run ids

STATUS_EVENTS: dict[str, type[WorkflowActivated | WorkflowPaused | WorkflowDeleted]] = {
    "active": WorkflowActivated, "paused": WorkflowPaused, "deleted": WorkflowDeleted}


def new_id() -> str:
    """A fresh random id (workflows, runs without an idempotency key)."""
    return str(uuid.uuid4())


def run_id_for(workflow_id: str, idempotency_key: str | None) -> str:
    """The run id: the same for the same workflow and key, random without a key."""
    if idempotency_key is None:
        return new_id()
    return str(uuid.uuid5(_RUNS, f"{workflow_id}\n{idempotency_key}"))


def registered(defn: WorkflowDefinition, workflow_id: str, tenant: str, principal: Principal,
               now: datetime) -> WorkflowRegistered:
    """A new workflow at version 1."""
    return WorkflowRegistered(
        event_id=str(uuid.uuid4()), workflow_id=workflow_id, workflow_version=1,
        occurred_at=now, tenant=tenant, project=principal.project, name=defn.name,
        description=defn.description, definition=definition_json(defn),
        definition_hash=definition_hash(defn))


def versioned(defn: WorkflowDefinition, workflow_id: str, version: int, tenant: str,
              principal: Principal, now: datetime) -> WorkflowVersioned:
    """A workflow's next version."""
    return WorkflowVersioned(
        event_id=str(uuid.uuid4()), workflow_id=workflow_id, workflow_version=version,
        occurred_at=now, tenant=tenant, project=principal.project,
        definition=definition_json(defn), definition_hash=definition_hash(defn))


def status_changed(status: str, workflow_id: str, version: int, tenant: str,
                   principal: Principal, now: datetime
                   ) -> WorkflowActivated | WorkflowPaused | WorkflowDeleted:
    """The event that gives a workflow `status` (active, paused or deleted)."""
    return STATUS_EVENTS[status](
        event_id=str(uuid.uuid4()), workflow_id=workflow_id, workflow_version=version,
        occurred_at=now, tenant=tenant, project=principal.project, actor=principal.subject)


def start_run(run_id: str, workflow_id: str, version: int, definition: dict[str, Any],
              run_input: Any, idempotency_key: str | None, tenant: str, principal: Principal,
              now: datetime) -> StartRun:
    """Start `run_id` pinned to `version`, whose `definition` travels whole."""
    return StartRun(
        event_id=str(uuid.uuid4()), run_id=run_id, workflow_id=workflow_id,
        workflow_version=version, occurred_at=now, correlation_id=run_id, tenant=tenant,
        project=principal.project, input=run_input, definition=definition,
        idempotency_key=idempotency_key)


def cancel_run(run: dict[str, Any], reason: str, principal: Principal,
               now: datetime) -> CancelRun:
    """Cancel the run (a row of `runs`)."""
    return CancelRun(
        event_id=str(uuid.uuid4()), run_id=run["run_id"], workflow_id=run["workflow_id"],
        workflow_version=run["workflow_version"], occurred_at=now,
        correlation_id=run["run_id"], tenant=run["tenant"], project=run["project"],
        reason=reason, requested_by=principal.subject)
