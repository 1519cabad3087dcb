"""Bodies of /api/approvals and of deciding approvals and signalling runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from bend.api.models.common import LogPosition

__all__ = ["ApprovalDecision", "ApprovalPage", "ApprovalView", "Sent"]


class ApprovalDecision(BaseModel):
    """Approve (with the `answer` the approval's answer_schema asks for) or reject."""

    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=4000)
    answer: Any = None
    tool_call_id: str | None = Field(default=None, max_length=200)  # an agent's gated call


class ApprovalView(BaseModel):
    """An approval waiting for a decision, and whether the caller may make it."""

    run_id: str
    step_id: str
    workflow_id: str
    workflow_version: int
    message: str = ""
    approvers: dict[str, Any] | None = None
    answer_schema: dict[str, Any] | None = None
    on_timeout: str | None = None
    timeout_at: str | None = None
    waiting_since: datetime | None = None
    tool_call: dict[str, Any] | None = None  # a gated tool call: tool_call_id, tool_name, arguments
    may_decide: bool


class ApprovalPage(BaseModel):
    """The approvals waiting in the caller's project, oldest first."""

    items: list[ApprovalView]


class Sent(BaseModel):
    """A decision or signal sent to the run's orchestrator; the run shows it once decided."""

    run_id: str
    position: LogPosition
