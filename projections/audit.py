"""Projects who-did-what into `audit`: workflow lifecycle, runs asked for and cancelled."""

from __future__ import annotations

from typing import Any

import asyncpg

from bend.core.events import (
    Event, RunCancelled, RunRequested, WorkflowActivated, WorkflowDeleted, WorkflowPaused,
    WorkflowRegistered, WorkflowVersioned,
)

__all__ = ["AUDITED", "project"]

_ACTIONS: dict[type, str] = {
    WorkflowRegistered: "workflow.registered",
    WorkflowVersioned: "workflow.versioned",
    WorkflowActivated: "workflow.activated",
    WorkflowPaused: "workflow.paused",
    WorkflowDeleted: "workflow.deleted",
    RunRequested: "run.requested",
    RunCancelled: "run.cancelled",
}
AUDITED = frozenset(_ACTIONS)

_INSERT = """
INSERT INTO audit (event_id, occurred_at, actor, action, workflow_id, workflow_version, run_id,
                   tenant, project, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (event_id) DO NOTHING
RETURNING 1
"""


async def project(conn: asyncpg.Connection, ev: Event) -> bool:
    """Record one audited event; False if it was already recorded (a redelivery)."""
    actor, detail = _actor_and_detail(ev)
    added = await conn.fetchval(_INSERT, ev.event_id, ev.occurred_at, actor,
                                _ACTIONS[type(ev)], ev.workflow_id, ev.workflow_version,
                                ev.run_id, ev.tenant, ev.project, detail)
    return added == 1


def _actor_and_detail(ev: Event) -> tuple[str, dict[str, Any]]:
    match ev:
        case WorkflowActivated() | WorkflowPaused() | WorkflowDeleted():
            return ev.actor, {}
        case WorkflowRegistered():
            return "", {"name": ev.name, "definition_hash": ev.definition_hash}
        case WorkflowVersioned():
            return "", {"definition_hash": ev.definition_hash}
        case RunRequested():
            actor = f"trigger:{ev.trigger_id}" if ev.trigger_id else ""
            return actor, {"idempotency_key": ev.idempotency_key,
                           "parent_run_id": ev.parent_run_id,
                           "forked_from_run_id": ev.forked_from_run_id}
        case RunCancelled():
            return ev.requested_by, {"reason": ev.reason}
    return "", {}
