"""Trigger definitions as the API accepts them, the events it records for them, and its errors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bend.api.inputs import nul_locations
from bend.api.problems import ApiError
from bend.core.events import TriggerFired, TriggerRegistered, TriggerRemoved, TriggerUpdated
from bend.core.schedule_errors import InvalidTrigger
from bend.core.triggers import WebhookTrigger, parse_trigger
from bend.security.roles import Principal

__all__ = [
    "UnknownTrigger", "UnknownWebhook", "WebhookPathTaken", "WorkflowPaused", "accepted",
    "fired", "registered", "removed", "updated",
]


class UnknownTrigger(ApiError):
    """No trigger has this id (in the caller's project), or it was removed."""

    code = "unknown_trigger"
    status = 404

    def __init__(self, trigger_id: str) -> None:
        super().__init__(f"trigger {trigger_id} not found; list a workflow's triggers with "
                         "GET /api/workflows/{workflow_id}/triggers")
        self.trigger_id = trigger_id


class WebhookPathTaken(ApiError):
    """Another webhook trigger already listens on this path."""

    code = "webhook_path_taken"
    status = 409

    def __init__(self, path: str) -> None:
        super().__init__(f"a webhook trigger already listens on /webhooks/{path}; choose "
                         "another path (GET /api/webhooks lists those in use)")
        self.path = path


class UnknownWebhook(ApiError):
    """No enabled webhook trigger listens on this path."""

    code = "unknown_webhook"
    status = 404

    def __init__(self, path: str) -> None:
        super().__init__(f"no enabled webhook listens on /webhooks/{path}; check the URL "
                         "against GET /api/webhooks")
        self.path = path


class WorkflowPaused(ApiError):
    """The trigger's workflow is paused, so its triggers start no runs."""

    code = "workflow_paused"
    status = 409

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"workflow {workflow_id} is paused, so its triggers start no runs; "
                         "activate it with POST /api/workflows/{workflow_id}/activate")
        self.workflow_id = workflow_id


def accepted(data: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The trigger a request's definition gives and its JSON as recorded; InvalidTrigger (422)
    listing every problem. Webhooks must name the secret that signs their deliveries."""
    trigger = parse_trigger(data)
    if isinstance(trigger, WebhookTrigger) and trigger.secret_name is None:
        raise InvalidTrigger([
            "secret_name: a webhook trigger names the secret its deliveries are signed with; "
            "store one with PUT /api/secrets/{name} and give its name here"])
    definition = trigger.model_dump(mode="json")
    if nuls := nul_locations(definition):
        raise InvalidTrigger([f"{where.lstrip('.')}: holds a NUL character (\\u0000), which "
                              "cannot be stored; remove it" for where in nuls])
    return trigger, definition


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
