"""Bodies of /api/workflows/{workflow_id}/triggers, /api/triggers, /api/webhooks and /webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool, StrictInt, model_validator

from bend.api.inputs import IsoAwareTime
from bend.api.models.common import LogPosition

__all__ = [
    "BACKFILL_CAP", "BackfillAccepted", "BackfillRequest", "BackfilledRun", "NextFireTimes",
    "ReplayAccepted",
    "ReplayRequest", "TriggerList", "TriggerState", "TriggerView", "TriggerWrite",
    "TriggerErrorList", "TriggerErrorView", "TriggerWritten", "WebhookAccepted", "WebhookList",
    "WebhookView",
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
    last_error: str | None = Field(description="The latest failure, as `<stage>: <error>`")
    last_error_at: datetime | None
    error_count: int = Field(default=0, description="Failures recorded (TriggerFailed)")


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


class NextFireTimes(BaseModel):
    """A schedule trigger's next due times, oldest first (none when disabled or paused)."""

    trigger_id: str
    items: list[datetime]


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


BACKFILL_CAP = 1000  # the most due times one backfill request may fire


class BackfillRequest(BaseModel):
    """Fire a schedule's due times in [start, end) that have not fired yet."""

    start: IsoAwareTime
    end: IsoAwareTime
    max_runs: StrictInt = Field(default=100, ge=1, le=BACKFILL_CAP,
                          description="Refuse (422) a range holding more due times than this")


class BackfilledRun(BaseModel):
    """One due time of a backfill: the run it started, or the run it had started before."""

    due_at: datetime
    run_id: str
    status: str = Field(description="started, or already_fired (nothing sent)")


class BackfillAccepted(BaseModel):
    """A backfill's due times, oldest first."""

    trigger_id: str
    started: int
    already_fired: int
    runs: list[BackfilledRun]


class ReplayRequest(BaseModel):
    """Re-read a Kafka trigger's topic from an offset or a time."""

    from_offset: StrictInt | None = Field(default=None, ge=0)
    from_time: IsoAwareTime | None = None
    partition: StrictInt | None = Field(default=None, ge=0,
                                  description="The partition to re-read; none: every one")
    force: StrictBool = Field(default=False, description="Fire records that fired before again "
                        "(new runs); otherwise they start nothing")

    @model_validator(mode="after")
    def _one_start(self) -> ReplayRequest:
        if (self.from_offset is None) == (self.from_time is None):
            raise ValueError("give exactly one of from_offset and from_time")
        return self


class ReplayAccepted(BaseModel):
    """A replay recorded; the trigger's worker re-reads the topic from there."""

    trigger_id: str
    replay_id: str
    position: LogPosition


class TriggerErrorView(BaseModel):
    """One failure of a trigger."""

    event_id: str
    stage: str = Field(description="poll, subscribe, decode, filter, map or start")
    error: str
    source: str | None = Field(description="The URL polled or the record (topic/partition/offset)")
    failed_at: datetime


class TriggerErrorList(BaseModel):
    """A trigger's latest failures, newest first."""

    items: list[TriggerErrorView]
