"""The trigger events the API and the trigger workers record; ids and time arrive as arguments."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bend.core.events import (
    TriggerFailed, TriggerFired, TriggerRegistered, TriggerRemoved, TriggerReplayRequested,
    TriggerUpdated,
)
from bend.core.commands import StartRun
from bend.security.roles import Principal, Role
from bend.triggering import records

__all__ = [
    "failed", "fired", "firing", "registered", "removed", "replay_requested", "updated",
]


def _envelope(workflow_id: str, version: int, tenant: str, principal: Principal,
              now: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "workflow_id": workflow_id,
            "workflow_version": version, "occurred_at": now, "tenant": tenant,
            "project": principal.project}


def registered(trigger_id: str, definition: dict[str, Any], workflow_id: str, version: int,
               tenant: str, principal: Principal, now: datetime) -> TriggerRegistered:
    """A trigger added to a workflow (enabled)."""
    return TriggerRegistered(**_envelope(workflow_id, version, tenant, principal, now),
                             trigger_id=trigger_id, trigger_type=definition["type"],
                             definition=definition, actor=principal.subject)


def updated(row: Mapping[str, Any], definition: dict[str, Any], enabled: bool, tenant: str,
            principal: Principal, now: datetime) -> TriggerUpdated:
    """A trigger (a `triggers` row) with a new definition or enabled flag."""
    return TriggerUpdated(**_envelope(row["workflow_id"], 0, tenant, principal, now),
                          trigger_id=row["trigger_id"], definition=definition, enabled=enabled,
                          actor=principal.subject)


def removed(row: Mapping[str, Any], tenant: str, principal: Principal,
            now: datetime) -> TriggerRemoved:
    """A trigger (a `triggers` row) removed."""
    return TriggerRemoved(**_envelope(row["workflow_id"], 0, tenant, principal, now),
                          trigger_id=row["trigger_id"], actor=principal.subject)


def fired(row: Mapping[str, Any], run_id: str, version: int, dedupe_key: str, run_input: Any,
          now: datetime) -> TriggerFired:
    """A trigger (a `triggers` row) fired once for `dedupe_key`, starting `run_id`."""
    return TriggerFired(event_id=str(uuid.uuid4()), run_id=run_id,
                        workflow_id=row["workflow_id"], workflow_version=version,
                        occurred_at=now, correlation_id=run_id, tenant=row["tenant"],
                        project=row["project"], trigger_id=row["trigger_id"],
                        trigger_type=row["trigger_type"], dedupe_key=dedupe_key, input=run_input)


def failed(row: Mapping[str, Any], stage: str, error: str, now: datetime,
           source: str | None = None) -> TriggerFailed:
    """A trigger (a `triggers` row) could not poll, decode, filter or start (`stage`)."""
    return TriggerFailed(event_id=str(uuid.uuid4()), workflow_id=row["workflow_id"],
                         occurred_at=now, tenant=row["tenant"], project=row["project"],
                         trigger_id=row["trigger_id"], trigger_type=row["trigger_type"],
                         stage=stage, error=error[:2000], source=source)


def replay_requested(row: Mapping[str, Any], replay_id: str, *, partition: int | None,
                     from_offset: int | None, from_time: datetime | None, force: bool,
                     principal: Principal, now: datetime) -> TriggerReplayRequested:
    """Re-read a Kafka trigger's topic from an offset or a time (see `streams.triggers.events`)."""
    return TriggerReplayRequested(**_envelope(row["workflow_id"], 0, row["tenant"], principal,
                                              now),
                                  trigger_id=row["trigger_id"], replay_id=replay_id,
                                  partition=partition, from_offset=from_offset,
                                  from_time=from_time, force=force, actor=principal.subject)


def firing(row: Mapping[str, Any], dedupe_key: str, version: int, definition: dict[str, Any],
           run_input: Any, now: datetime, due_at: datetime | None = None,
           ) -> tuple[TriggerFired, StartRun]:
    """One firing of a trigger (a `triggers` row): TriggerFired and the StartRun it causes.

    The run id comes from the workflow and `<type>:<dedupe_key>`, so whoever fires the same key
    (a second scheduler, a backfill, a redelivered webhook) sends the same StartRun, which the
    orchestrator rejects as a duplicate.
    """
    key = f"{row['trigger_type']}:{dedupe_key}"
    run_id = records.run_id_for(row["workflow_id"], key)
    event = dataclasses.replace(fired(row, run_id, version, dedupe_key, run_input, now),
                                due_at=due_at)
    caller = Principal(subject=f"trigger:{row['trigger_id']}", project=row["project"],
                       role=Role.OPERATOR)
    start = dataclasses.replace(
        records.start_run(run_id, row["workflow_id"], version, definition, run_input, key,
                          row["tenant"], caller, now),
        trigger_id=row["trigger_id"], causation_id=event.event_id)
    return event, start
