"""POST /webhooks/{path}: a signed delivery fires its webhook trigger and starts a run.

Authenticated by its signature, not by an API key: `X-Bend-Signature: t=<unix s>,v1=<hex
HMAC-SHA256 of "<t>.<body>" under the trigger's secret>`. A delivery is refused, and nothing is
produced, unless it names an enabled hook, is signed within the tolerance window, carries the
required headers and was not accepted before. A path where no enabled hook listens is refused
as a bad signature is (401), so paths cannot be discovered without a hook's secret.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response

from bend.services import trigger_checks as triggering
from bend.api.deps import Context, Sec
from bend.api.errors import problem_responses
from bend.api.hooks import check_headers, document, run_input
from bend.api.inputs import check_inputs
from bend.api.models.common import LogPosition
from bend.api.models.triggers import WebhookAccepted
from bend.core.triggers import WebhookTrigger, parse_trigger
from bend.security.dependencies import client_ip
from bend.security.errors import UnknownSecret
from bend.security.roles import Principal, Role
from bend.security.webhooks import refuse_unknown, sign, verify
from bend.triggering import events as trigger_events
from bend.triggering import records
from projections.queries import triggers as queries

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_BODY = {"requestBody": {"required": False, "description": "Any payload; JSON when its "
                         "Content-Type says so", "content": {"application/json": {
                             "schema": {}}}}}


async def _hook(ctx: Context, path: str, raw: bytes) -> tuple[dict[str, Any], WebhookTrigger]:
    """The enabled hook at `path`. Where none listens, the caller hears what a bad signature
    hears (401), so paths cannot be told apart without a hook's secret; the log says why."""
    row = await queries.webhook_by_path(ctx.pool, path)
    hook = None if row is None or not row["enabled"] else parse_trigger(row["definition"])
    if row is None or not isinstance(hook, WebhookTrigger) or hook.secret_name is None:
        log.info("webhook_refused", path=path[:200],
                 reason="no such hook" if row is None else "hook disabled",
                 trigger_id=None if row is None else row["trigger_id"])
        raise refuse_unknown(raw)
    return row, hook


@router.post("/{path}", status_code=202, response_model=WebhookAccepted, openapi_extra=_BODY,
             responses=problem_responses(400, 401, 409, 413, 415, 422, 429, 503))
async def receive(path: str, request: Request, response: Response, ctx: Context,
                  security: Sec) -> WebhookAccepted:
    """Verify a signed delivery, then record the firing and start the workflow's run."""
    await security.limits.check_ip(client_ip(request))
    raw = await request.body()
    row, hook = await _hook(ctx, path, raw)
    assert hook.secret_name is not None
    try:
        secret = await security.secrets.get(row["project"], hook.secret_name)
    except UnknownSecret:
        log.error("webhook_secret_missing", trigger_id=row["trigger_id"],
                  secret_name=hook.secret_name, project=row["project"])
        raise refuse_unknown(raw) from None  # the caller learns nothing of the hook
    now = time.time()
    timestamp = await verify(secret, request.headers, raw, now,
                             security.settings.webhook_tolerance_s, security.webhook_guard,
                             scope=row["trigger_id"],
                             # only an authentic delivery learns what its headers must be
                             check=lambda headers: check_headers(hook, headers))
    digest = sign(secret, timestamp, raw).rpartition("v1=")[2]  # the delivery's own v1
    version, definition = await triggering.pinned(ctx.pool, row)
    given = run_input(hook, document(request.headers, request.query_params, raw))
    check_inputs(row["workflow_id"], definition, [given], ["input"])
    key = f"webhook:{row['trigger_id']}:{digest}"
    run_id = records.run_id_for(row["workflow_id"], key)
    at = datetime.now(timezone.utc)
    fired = trigger_events.fired(row, run_id, version, digest, given, at)
    caller = Principal(subject=f"trigger:{row['trigger_id']}", project=row["project"],
                       role=Role.OPERATOR)
    start = dataclasses.replace(
        records.start_run(run_id, row["workflow_id"], version, definition, given, key,
                          row["tenant"], caller, at),
        trigger_id=row["trigger_id"], causation_id=fired.event_id)
    _, position = await ctx.producer.send_many([fired, start])
    log.info("webhook_fired", trigger_id=row["trigger_id"], run_id=run_id, path=path)
    response.headers["Location"] = f"/api/executions/{run_id}"
    response.headers["X-Bend-Position"] = position.token
    return WebhookAccepted(run_id=run_id, trigger_id=row["trigger_id"],
                           workflow_id=row["workflow_id"], workflow_version=version,
                           position=LogPosition.of(position))
