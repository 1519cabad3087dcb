"""/api/workflows: create, list, read, version, delete, activate, pause and execute workflows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from bend.api.bodies import DEFINITION_BODY, read_definition
from bend.api.deps import Context, consistent, permit
from bend.api.errors import problem_responses
from bend.api.models.common import LogPosition
from bend.api.models.workflows import (
    MAX_VERSION, BulkExecuteRequest, BulkExecutionAccepted, ExecuteRequest, ExecutionAccepted,
    VersionInfo, WorkflowDetail, WorkflowPage, WorkflowStatusChanged, WorkflowSummary,
    WorkflowWritten,
)
from bend.api.paging import after_cursor, next_cursor
from bend.api.problems import UnknownVersion
from bend.security.roles import Principal
from bend.services import bulk
from bend.services import workflows as service
from projections.queries import workflows as queries

__all__ = ["router"]

router = APIRouter(prefix="/api/workflows", tags=["workflows"],
                   dependencies=[Depends(consistent)],
                   responses=problem_responses(400, 403, 422, 503))

Reader = Annotated[Principal, Depends(permit("workflows:read"))]
Writer = Annotated[Principal, Depends(permit("workflows:write"))]
Executor = Annotated[Principal, Depends(permit("workflows:execute"))]


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _workflow(ctx: Context, principal: Principal, workflow_id: str, *,
                    live: bool = False) -> dict[str, Any]:
    return await service.get_workflow(ctx, principal, workflow_id, live=live)


@router.post("", status_code=201, response_model=WorkflowWritten, openapi_extra=DEFINITION_BODY,
             responses=problem_responses(415))
async def create_workflow(request: Request, response: Response, ctx: Context,
                          principal: Writer) -> WorkflowWritten:
    """Create a workflow from a JSON or YAML definition (422 lists every problem)."""
    written = await service.create_workflow(ctx, principal, await read_definition(request))
    response.headers["Location"] = f"/api/workflows/{written.workflow_id}"
    return _written(response, written)


def _written(response: Response, written: service.Written) -> WorkflowWritten:
    if written.position is not None:
        response.headers["X-Bend-Position"] = written.position.token
    return WorkflowWritten(workflow_id=written.workflow_id, version=written.version,
                           definition_hash=written.definition_hash, changed=written.changed,
                           position=LogPosition.of(written.position) if written.position
                           else None)


@router.get("", response_model=WorkflowPage)
async def list_workflows(
    ctx: Context, principal: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Search name and description")]
    = None,
    status: Annotated[list[str] | None, Query(description="active, paused, deleted")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> WorkflowPage:
    """Workflows of the caller's project, newest first (deleted ones only if `status` asks)."""
    rows = await queries.list_workflows(ctx.pool, principal.project, search=q, statuses=status,
                                        after=after_cursor(cursor), limit=limit + 1)
    page = rows[:limit]
    return WorkflowPage(
        items=[WorkflowSummary.model_validate(r) for r in page],
        next_cursor=next_cursor(rows, limit, "created_at", "workflow_id"))


@router.get("/{workflow_id}", response_model=WorkflowDetail, responses=problem_responses(404))
async def get_workflow(ctx: Context, principal: Reader, workflow_id: str,
                       version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None
                       ) -> WorkflowDetail:
    """A workflow with its latest definition (or `version`'s) and its versions."""
    row = await _workflow(ctx, principal, workflow_id)
    wanted = version or row["latest_version"]
    found = await queries.get_version(ctx.pool, workflow_id, wanted)
    if found is None:
        raise UnknownVersion(workflow_id, wanted, row["latest_version"])
    history = await queries.versions(ctx.pool, workflow_id)
    return WorkflowDetail(**row, version=wanted, definition=found["definition"],
                          definition_hash=found["definition_hash"],
                          versions=[VersionInfo.model_validate(v) for v in history])


@router.put("/{workflow_id}", response_model=WorkflowWritten, openapi_extra=DEFINITION_BODY,
            responses=problem_responses(404, 409, 415))
async def update_workflow(request: Request, response: Response, ctx: Context,
                          principal: Writer, workflow_id: str) -> WorkflowWritten:
    """Give the workflow a new version (none if the definition equals the latest)."""
    defn = await read_definition(request)
    return _written(response, await service.version_workflow(ctx, principal, workflow_id, defn))


async def _set_status(ctx: Context, principal: Principal, response: Response,
                      workflow_id: str, status: str) -> WorkflowStatusChanged:
    changed = await service.set_status(ctx, principal, workflow_id, status)
    if changed.position is None:
        return WorkflowStatusChanged(workflow_id=workflow_id, status=status, changed=False)
    response.headers["X-Bend-Position"] = changed.position.token
    return WorkflowStatusChanged(workflow_id=workflow_id, status=status, changed=True,
                                 position=LogPosition.of(changed.position))


@router.delete("/{workflow_id}", response_model=WorkflowStatusChanged,
               responses=problem_responses(404, 409))
async def delete_workflow(response: Response, ctx: Context, principal: Writer,
                          workflow_id: str) -> WorkflowStatusChanged:
    """Delete the workflow; its runs and history stay readable."""
    return await _set_status(ctx, principal, response, workflow_id, "deleted")


@router.post("/{workflow_id}/activate", response_model=WorkflowStatusChanged,
             responses=problem_responses(404, 409))
async def activate_workflow(response: Response, ctx: Context, principal: Writer,
                            workflow_id: str) -> WorkflowStatusChanged:
    """Let the workflow's triggers start runs."""
    return await _set_status(ctx, principal, response, workflow_id, "active")


@router.post("/{workflow_id}/pause", response_model=WorkflowStatusChanged,
             responses=problem_responses(404, 409))
async def pause_workflow(response: Response, ctx: Context, principal: Writer,
                         workflow_id: str) -> WorkflowStatusChanged:
    """Stop the workflow's triggers from starting runs (manual runs still start)."""
    return await _set_status(ctx, principal, response, workflow_id, "paused")


@router.post("/{workflow_id}/execute", status_code=202, response_model=ExecutionAccepted,
             responses={**problem_responses(404, 409),
                        200: {"model": ExecutionAccepted,
                              "description": "The idempotency key named a run already asked for"}})
async def execute_workflow(body: ExecuteRequest, response: Response, ctx: Context,
                           principal: Executor, workflow_id: str) -> ExecutionAccepted:
    """Start a run with `input`; the same `idempotency_key` always gives the same run."""
    started = await service.start_run(ctx, principal, workflow_id, body.input,
                                      version=body.version, idempotency_key=body.idempotency_key)
    if started.position is None:
        response.status_code = 200
        return ExecutionAccepted(run_id=started.run_id, workflow_id=workflow_id,
                                 workflow_version=started.workflow_version,
                                 status=started.status)
    response.headers["Location"] = f"/api/executions/{started.run_id}"
    response.headers["X-Bend-Position"] = started.position.token
    return ExecutionAccepted(run_id=started.run_id, workflow_id=workflow_id,
                             workflow_version=started.workflow_version,
                             position=LogPosition.of(started.position))


@router.post("/{workflow_id}/execute/bulk", status_code=202, response_model=BulkExecutionAccepted,
             responses=problem_responses(404, 409, 413))
async def execute_workflow_bulk(body: BulkExecuteRequest, ctx: Context, principal: Executor,
                                workflow_id: str) -> BulkExecutionAccepted:
    """Start one run per input (at most `BEND_API__BULK_MAX_RUNS`, 1000 by default, and
    `BEND_API__BULK_MAX_BYTES` of commands: 413 over either, before anything is sent); run i's
    key is `<idempotency_key>:<i>`."""
    started = await bulk.start_runs(ctx, principal, workflow_id, body.inputs,
                                    version=body.version, idempotency_key=body.idempotency_key)
    return BulkExecutionAccepted(count=len(started.runs), runs=[
        ExecutionAccepted(run_id=run_id, workflow_id=workflow_id,
                          workflow_version=started.workflow_version,
                          position=LogPosition.of(position))
        for run_id, position in started.runs])
