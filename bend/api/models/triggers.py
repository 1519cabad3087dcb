"""Bodies of /api/workflows/{workflow_id}/triggers, /api/triggers, /api/webhooks and /webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bend.api.models.common import LogPosition

__all__ = [
    "TriggerList", "TriggerState", "TriggerView", "TriggerWrite", "TriggerWritten",
    "WebhookAccepted", "WebhookList", "WebhookView",
]

_DEFINITION = ("A trigger definition: `type` (schedule, webhook, kafka, polling, manual) and its "
               "fields, e.g. {\"type\": \"schedule\", \"schedule\": {\"cron\": \"0 9 * * 1-5\", "
               "\"timezone\": \"Europe/Paris\"}} or {\"type\": \"webhook\", \"path\": \"orders\", "
               "\"secret_name\": \"ORDERS_HOOK\", \"input_mapping\": \"body.order\"}")


class TriggerWrite(BaseModel):
    """A trigger's definition and whether it fires."""

    definition: dict[str, Any] = Field(description=_DEFINITION)
    enabled: bool = True


class TriggerState(BaseModel):
    """What the trigger has done, and when a schedule is next due."""

    fire_count: int
    first_fired_at: datetime | None
    last_fired_at: datetime | None
    last_due_at: datetime | None = Field(description="The latest due time fired (schedules)")
    next_due_at: datetime | None = Field(
        description="Schedules: the next due time; none when disabled, paused or finished")
    last_error: str | None
    last_error_at: datetime | None


class TriggerView(BaseModel):
    """A trigger: its definition, whether it fires, its state, and a webhook's URL."""

    trigger_id: str
    workflow_id: str
    type: str
    enabled: bool
    definition: dict[str, Any]
    registered_at: datetime | None
    updated_at: datetime | None
    state: TriggerState
    webhook_url: str | None = Field(default=None, description="Webhooks: where to POST")


class TriggerList(BaseModel):
    """A workflow's triggers, oldest first."""

    items: list[TriggerView]


class TriggerWritten(BaseModel):
    """A trigger created, changed or removed, and where its event landed (none if unchanged)."""

    trigger_id: str
    workflow_id: str
    type: str
    enabled: bool
    changed: bool
    removed: bool = False
    webhook_url: str | None = None
    position: LogPosition | None = None


class WebhookView(BaseModel):
    """A webhook trigger and the URL its sender posts to."""

    trigger_id: str
    workflow_id: str
    path: str
    url: str
    enabled: bool
    secret_name: str | None
    required_headers: dict[str, str | None]


class WebhookList(BaseModel):
    """The project's webhook triggers, by path."""

    items: list[WebhookView]


class WebhookAccepted(BaseModel):
    """A delivery accepted: the run it starts (queued until the orchestrator takes it)."""

    run_id: str
    trigger_id: str
    workflow_id: str
    workflow_version: int
    status: str = "queued"
    position: LogPosition
