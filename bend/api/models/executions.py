"""Bodies of /api/executions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bend.api.models.common import LogPosition
from bend.core.timing import attempt_timing

__all__ = [
    "CancelAccepted", "CancelRequest", "EventPage", "EventView", "Graph", "GraphEdge",
    "GraphNode", "LogLine", "LogPage", "RunDetail", "RunPage", "RunSummary", "StepView",
    "UsageView",
]


class RunSummary(BaseModel):
    """A run as listed."""

    run_id: str
    workflow_id: str
    workflow_version: int
    status: str = Field(description="queued | pending | running | completed | failed | cancelled")
    error_type: str | None = None
    error_message: str | None = None
    failed_step_id: str | None = None
    idempotency_key: str | None = None
    trigger_id: str | None = None
    parent_run_id: str | None = None
    forked_from_run_id: str | None = None
    backtest_id: str | None = Field(default=None, description="The backtest this run is part of")
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    last_seq: int = 0


class StepView(BaseModel):
    """A step's latest attempt."""

    step_id: str
    node_type: str
    status: str
    attempts: int
    input: Any = None
    output: Any = None
    error_type: str | None = None
    error_message: str | None = None
    reason: str | None = None
    worker_id: str | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = Field(default=None, description=(
        "When the latest attempt began (an executor's step: its end less the time it ran)"))
    finished_at: datetime | None = None
    queued_ms: int | None = Field(default=None, description="Scheduled until it began")
    duration_ms: int | None = Field(default=None, description=(
        "How long it ran: from when it began to its end (or until now while it runs)"))
    next_retry_at: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any], now: datetime) -> StepView:
        """A step row with its timing (bend.core.timing: the CLI, UI and replay agree)."""
        timing = attempt_timing(row.get("scheduled_at"), row.get("started_at"),
                                row.get("finished_at"), row.get("duration_ms"),
                                now if row.get("started_at") else None)
        return cls.model_validate({**row, "started_at": timing.began_at,
                                   "queued_ms": timing.queued_ms,
                                   "duration_ms": timing.run_ms})


class UsageView(BaseModel):
    """LLM calls of the run with one model."""

    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


class RunDetail(RunSummary):
    """A run with its input, output, steps and LLM usage."""

    input: Any = None
    output: Any = None
    cancel_requested_at: datetime | None = None
    cancel_reason: str | None = None
    steps: list[StepView]
    usage: list[UsageView]


class RunPage(BaseModel):
    """One page of runs; pass `next_cursor` as `?cursor=` for the next."""

    items: list[RunSummary]
    next_cursor: str | None


class CancelRequest(BaseModel):
    """Why the run is cancelled."""

    reason: str = Field(default="", max_length=2000)


class CancelAccepted(BaseModel):
    """A cancel asked for; the run shows `cancelled` once the orchestrator has stopped it."""

    run_id: str
    position: LogPosition


class EventView(BaseModel):
    """One event of a run's log."""

    seq: int
    event_id: str
    event_type: str
    step_id: str | None
    occurred_at: datetime
    payload: dict[str, Any]
    position: LogPosition


class EventPage(BaseModel):
    """Events in seq order; pass `next_after_seq` as `?after_seq=` for more."""

    items: list[EventView]
    next_after_seq: int


class LogLine(BaseModel):
    """One line of a run's log, rendered from one event."""

    seq: int
    at: datetime
    level: str = Field(description="info | warning | error")
    step_id: str | None
    event_type: str
    message: str


class LogPage(BaseModel):
    """Log lines in seq order; pass `next_after_seq` as `?after_seq=` for more."""

    items: list[LogLine]
    next_after_seq: int


class GraphNode(BaseModel):
    """A step of the definition with the state of its run."""

    id: str
    type: str
    description: str = ""
    status: str = Field(description="a step status, or `not_started`")
    attempts: int = 0
    instances: int = Field(default=0, description="loop iterations that ran it")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class GraphEdge(BaseModel):
    """`target` waits for `source` (kind `after`), or is a member of it (`branch`, arm name)."""

    source: str
    target: str
    kind: str


class Graph(BaseModel):
    """A run's steps and their dependencies, for drawing."""

    run_id: str
    status: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
