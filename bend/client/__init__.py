"""A typed client of Bend's REST API, synchronous (`Client`) and asyncio (`AsyncClient`).

    from bend.client import Client

    with Client("http://127.0.0.1:8000", api_key=key) as bend:
        run = bend.run(workflow_id, {"topic": "kafka"}, timeout_s=120)
        print(run.status, run.output)

Errors are typed (`NotFound`, `Conflict`, `InvalidRequest`...; all `ApiError`) and carry the
API's problem details: `status`, `error` (the code to branch on), `detail`, `problem`.
"""

from __future__ import annotations

from bend.client.aio import AsyncClient
from bend.client.errors import (
    ApiError, ApiUnreachable, Conflict, Forbidden, InvalidRequest, NotFound, RateLimited,
    ServerError, Unauthorized, Unavailable, WaitTimedOut,
)
from bend.client.models import (
    TERMINAL, Event, Forked, Run, RunSummary, Sent, Started, Step, Workflow,
)
from bend.client.protocol import RetryPolicy
from bend.client.sync import Client

__all__ = [
    "TERMINAL", "ApiError", "ApiUnreachable", "AsyncClient", "Client", "Conflict", "Event",
    "Forbidden", "Forked", "InvalidRequest", "NotFound", "RateLimited", "RetryPolicy", "Run",
    "RunSummary", "Sent", "ServerError", "Started", "Step", "Unauthorized", "Unavailable",
    "WaitTimedOut", "Workflow",
]
