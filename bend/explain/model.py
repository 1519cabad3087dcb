"""The explanation of one run, as the API and CLI return it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bend.core.explain import Reason

__all__ = ["Explanation", "ReasonView"]


class ReasonView(BaseModel):
    """One thing the run waits on, or how it ended."""

    kind: str = Field(description="run_finished, not_started, timer, child_run, "
                                  "waiting_for_executor, step_running, orchestrator_lag, "
                                  "circuit_open, concurrency_limit, no_consumer, dead_lettered, "
                                  "unknown")
    message: str = Field(description="For a person: what the run waits on and what to do")
    until: datetime | None = Field(default=None, description="When the wait ends, if known")
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, reason: Reason) -> ReasonView:
        """The view of a core reason."""
        return cls(kind=reason.kind, message=reason.message, until=reason.until,
                   details=dict(reason.details))


class Explanation(BaseModel):
    """Why a run is where it is: its status and the reasons, most pressing first."""

    run_id: str
    status: str = Field(description="requested, running, completed, failed, cancelled, or "
                                    "unknown when the log holds no event of the run yet")
    workflow_id: str | None = None
    partition: int = Field(description="The partition of the run's key (commands, run events, "
                                       "tasks)")
    explained_at: datetime
    reasons: list[ReasonView]
    notes: list[str] = Field(default_factory=list,
                             description="Checks that could not be made, and why")
