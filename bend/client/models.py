"""What the client returns: the API's answers as frozen pydantic models (unknown fields kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "TERMINAL", "Event", "Forked", "Run", "RunSummary", "Sent", "Started", "Step", "Workflow",
]

TERMINAL = frozenset({"completed", "failed", "cancelled"})


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class Started(_Answer):
    """A run asked for; `position` (a `wait_for` token) is None if the key named an older run."""

    run_id: str
    workflow_id: str
    workflow_version: int
    status: str = "queued"
    position: str | None = None


class RunSummary(_Answer):
    """A run as `list` gives it."""

    run_id: str
    workflow_id: str
    workflow_version: int
    status: str
    error_type: str | None = None
    error_message: str | None = None
    failed_step_id: str | None = None
    idempotency_key: str | None = None
    parent_run_id: str | None = None
    forked_from_run_id: str | None = None
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    last_seq: int = 0

    @property
    def finished(self) -> bool:
        """Completed, failed or cancelled."""
        return self.status in TERMINAL


class Step(_Answer):
    """A step's latest attempt."""

    step_id: str
    node_type: str
    status: str
    attempts: int
    input: Any = None
    output: Any = None
    error_type: str | None = None
    error_message: str | None = None


class Run(RunSummary):
    """A run with its input, output and steps, as `get` gives it."""

    input: Any = None
    output: Any = None
    cancel_reason: str | None = None
    steps: list[Step] = []

    def step(self, step_id: str) -> Step:
        """The step `step_id` (KeyError if the run has none)."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)


class Event(_Answer):
    """One event of a run's log."""

    seq: int
    event_id: str
    event_type: str
    step_id: str | None = None
    occurred_at: datetime
    payload: dict[str, Any] = {}


class Sent(_Answer):
    """A command the API accepted (cancel, signal, approval, fork): `position` to wait for."""

    run_id: str
    position: str | None = None


class Workflow(_Answer):
    """A created or updated workflow version."""

    workflow_id: str
    version: int
    definition_hash: str
    changed: bool
    position: str | None = None


class Forked(_Answer):
    """A run a fork started: its id, its source, the step run again and the steps reused."""

    run_id: str
    forked_from_run_id: str
    fork_step_id: str
    reused: list[str] = []
