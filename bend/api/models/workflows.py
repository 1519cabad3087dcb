"""Bodies of /api/workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt

from bend.api.inputs import NulFree
from bend.api.models.common import LogPosition

__all__ = [
    "BulkExecuteRequest", "BulkExecutionAccepted", "ExecuteRequest", "ExecutionAccepted",
    "VersionInfo", "WorkflowDetail", "WorkflowPage", "WorkflowStatusChanged",
    "WorkflowSummary", "WorkflowWritten",
]

MAX_VERSION = 2**31 - 1  # versions are Postgres integers


class WorkflowSummary(BaseModel):
    """A workflow as listed."""

    workflow_id: str
    name: str
    description: str
    status: str = Field(description="active | paused | deleted")
    latest_version: int
    created_at: datetime
    updated_at: datetime


class VersionInfo(BaseModel):
    """One immutable version."""

    version: int
    definition_hash: str
    created_at: datetime


class WorkflowDetail(WorkflowSummary):
    """A workflow with one version's definition (the latest unless `?version=` asks)."""

    version: int
    definition: dict[str, Any]
    definition_hash: str
    versions: list[VersionInfo]


class WorkflowPage(BaseModel):
    """One page of workflows; pass `next_cursor` as `?cursor=` for the next."""

    items: list[WorkflowSummary]
    next_cursor: str | None


class WorkflowWritten(BaseModel):
    """A created or updated workflow: its version, and where the event landed."""

    workflow_id: str
    version: int
    definition_hash: str
    changed: bool = Field(description="false when the definition equals the latest version")
    position: LogPosition | None = None


class WorkflowStatusChanged(BaseModel):
    """A workflow's new status, and where the event landed (none if it had that status)."""

    workflow_id: str
    status: str
    changed: bool
    position: LogPosition | None = None


class ExecuteRequest(BaseModel):
    """Start one run."""

    input: Any = Field(default=None, description="The run's input (JSON)")
    idempotency_key: NulFree | None = Field(
        default=None, min_length=1, max_length=200,
        description="The same key for the same workflow always names the same run")
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_VERSION,
                                description="Default: the latest version")


class ExecutionAccepted(BaseModel):
    """A run asked for; it shows as `queued` until the orchestrator takes it."""

    run_id: str
    workflow_id: str
    workflow_version: int
    status: str = "queued"
    position: LogPosition | None = Field(
        default=None, description="None when the idempotency key named a run already started")


class BulkExecuteRequest(BaseModel):
    """Start one run per input."""

    inputs: list[Any] = Field(min_length=1, max_length=1000)
    idempotency_key: NulFree | None = Field(
        default=None, min_length=1, max_length=190,
        description="Run i gets the key `<idempotency_key>:<i>`")
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_VERSION)


class BulkExecutionAccepted(BaseModel):
    """The runs asked for, in the order of the inputs."""

    count: int
    runs: list[ExecutionAccepted]
