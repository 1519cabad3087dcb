"""Projects workflow events into `workflows` and `workflow_versions`."""

from __future__ import annotations

from bend.core.events import (
    Event, WorkflowActivated, WorkflowDeleted, WorkflowPaused, WorkflowRegistered,
    WorkflowVersioned,
)
from projections.writes import Write

__all__ = ["writes"]

_REGISTER = """
INSERT INTO workflows (workflow_id, name, description, status, latest_version, tenant, project,
                       created_at, updated_at)
VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $7)
ON CONFLICT (workflow_id) DO NOTHING
"""

_VERSION = """
INSERT INTO workflow_versions (workflow_id, version, definition, definition_hash, created_at,
                               event_id)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (workflow_id, version) DO NOTHING
"""

# A new version may rename or re-describe the workflow through its definition.
_VERSIONED = """
WITH added AS (
    INSERT INTO workflow_versions (workflow_id, version, definition, definition_hash,
                                   created_at, event_id)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (workflow_id, version) DO NOTHING
    RETURNING version
)
UPDATE workflows
SET latest_version = greatest(latest_version, $2), name = coalesce($7, name),
    description = coalesce($8, description), updated_at = $5
WHERE workflow_id = $1 AND EXISTS (SELECT 1 FROM added)
"""

# Deleted is final: a late activate or pause does not revive a workflow.
_STATUS = """
UPDATE workflows SET status = $2, updated_at = $3,
       deleted_at = CASE WHEN $2 = 'deleted' THEN $3 ELSE deleted_at END
WHERE workflow_id = $1 AND status <> 'deleted'
"""

_STATUSES = {WorkflowActivated: "active", WorkflowPaused: "paused", WorkflowDeleted: "deleted"}


def writes(ev: Event) -> list[Write]:
    """The writes one workflow event makes to its workflow's rows."""
    ln = ("workflow", ev.workflow_id)
    match ev:
        case WorkflowRegistered():
            version = max(ev.workflow_version, 1)
            return [
                Write(ln, _REGISTER, (ev.workflow_id, ev.name, ev.description, version,
                                      ev.tenant, ev.project, ev.occurred_at)),
                Write(ln, _VERSION, (ev.workflow_id, version, ev.definition or {},
                                     ev.definition_hash, ev.occurred_at, ev.event_id)),
            ]
        case WorkflowVersioned():
            name, description = _named(ev.definition)
            return [Write(ln, _VERSIONED, (ev.workflow_id, ev.workflow_version,
                                           ev.definition or {}, ev.definition_hash,
                                           ev.occurred_at, ev.event_id, name, description))]
        case WorkflowActivated() | WorkflowPaused() | WorkflowDeleted():
            return [Write(ln, _STATUS, (ev.workflow_id, _STATUSES[type(ev)], ev.occurred_at))]
    return []


def _named(definition: object) -> tuple[str | None, str | None]:
    if not isinstance(definition, dict):
        return None, None
    name, description = definition.get("name"), definition.get("description")
    return (name if isinstance(name, str) and name else None,
            description if isinstance(description, str) else None)
