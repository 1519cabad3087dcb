"""Trigger definitions as Bend accepts them (API and UI alike), and the trigger errors (the
events recorded for them are built by `bend.triggering.events`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from bend.core.triggers.errors import InvalidTrigger
from bend.core.triggers import WebhookTrigger, parse_trigger
from bend.services.errors import ApiError, UnknownVersion, WorkflowDeleted
from bend.services.inputs import nul_locations
from projections.queries import workflows as workflow_queries

__all__ = [
    "InvalidBackfill", "TriggerTypeMismatch", "UnknownTrigger",
    "WebhookPathTaken", "WorkflowPaused", "accepted", "pinned",
]


class UnknownTrigger(ApiError):
    """No trigger has this id (in the caller's project), or it was removed."""

    status = 404

    def __init__(self, trigger_id: str) -> None:
        super().__init__(f"trigger {trigger_id} not found; list a workflow's triggers with "
                         "GET /api/workflows/{workflow_id}/triggers")
        self.trigger_id = trigger_id


class WebhookPathTaken(ApiError):
    """Another webhook trigger already listens on this path."""

    status = 409

    def __init__(self, path: str) -> None:
        super().__init__(f"a webhook trigger already listens on /webhooks/{path}; choose "
                         "another path (GET /api/webhooks lists those in use)")
        self.path = path


class WorkflowPaused(ApiError):
    """The trigger's workflow is paused, so its triggers start no runs."""

    status = 409

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"workflow {workflow_id} is paused, so its triggers start no runs; "
                         "activate it with POST /api/workflows/{workflow_id}/activate")
        self.workflow_id = workflow_id


class TriggerTypeMismatch(ApiError):
    """The action is for another type of trigger (backfill: schedules; replay: Kafka)."""

    status = 409

    def __init__(self, trigger_id: str, trigger_type: str, wanted: str, action: str) -> None:
        super().__init__(f"trigger {trigger_id} is a {trigger_type} trigger; only {wanted} "
                         f"triggers can {action}")
        self.trigger_id = trigger_id


class InvalidBackfill(ApiError):
    """A backfill range that is reversed, in the future or holds more due times than allowed."""

    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


async def pinned(db: asyncpg.Pool | asyncpg.Connection,
                 row: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The trigger's (a `triggers` row) workflow's latest version and definition, as
    POST .../execute pins them; 409 when the workflow is deleted or paused."""
    workflow = await workflow_queries.get_workflow(db, row["project"], row["workflow_id"])
    if workflow is None or workflow["status"] == "deleted":
        raise WorkflowDeleted(row["workflow_id"])
    if workflow["status"] == "paused":
        raise WorkflowPaused(row["workflow_id"])
    version = workflow["latest_version"]
    found = await workflow_queries.get_version(db, row["workflow_id"], version)
    if found is None:
        raise UnknownVersion(row["workflow_id"], version, version)
    return version, found["definition"]


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
