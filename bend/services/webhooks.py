"""A signed webhook delivery fires its trigger and starts a run.

Authenticated by its signature, not by an API key: `X-Bend-Signature: t=<unix s>,v1=<hex
HMAC-SHA256 of "<t>.<body>" under the trigger's secret>`. A delivery is refused, and nothing is
produced, unless it names an enabled hook, is signed within the tolerance window, carries the
required headers and was not accepted before. A path where no enabled hook listens is refused
as a bad signature is (401), so paths cannot be discovered without a hook's secret.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import structlog

from bend.core.triggers import WebhookTrigger, parse_trigger
from bend.kafka.position import Position
from bend.security.dependencies import Security
from bend.security.errors import UnknownSecret
from bend.security.roles import Principal, Role
from bend.security.webhooks import refuse_unknown, sign, verify
from bend.services.deps import Deps
from bend.services.inputs import check_inputs
from bend.services.trigger_checks import pinned
from bend.services.webhook_input import check_headers, document, run_input
from bend.triggering import events as trigger_events
from bend.triggering import records
from projections.queries import triggers as queries

__all__ = ["Delivered", "deliver"]

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Delivered:
    """The run a delivery started, and where its StartRun landed."""

    run_id: str
    trigger_id: str
    workflow_id: str
    workflow_version: int
    position: Position


async def _hook(deps: Deps, path: str, raw: bytes) -> tuple[dict[str, Any], WebhookTrigger]:
    """The enabled hook at `path`. Where none listens, the caller hears what a bad signature
    hears (401), so paths cannot be told apart without a hook's secret; the log says why."""
    row = await queries.webhook_by_path(deps.pool, path)
    hook = None if row is None or not row["enabled"] else parse_trigger(row["definition"])
    if row is None or not isinstance(hook, WebhookTrigger) or hook.secret_name is None:
        log.info("webhook_refused", path=path[:200],
                 reason="no such hook" if row is None else "hook disabled",
                 trigger_id=None if row is None else row["trigger_id"])
        raise refuse_unknown(raw)
    return dict(row), hook


async def deliver(deps: Deps, security: Security, path: str, headers: Mapping[str, str],
                  query: Mapping[str, str], raw: bytes) -> Delivered:
    """Verify a signed delivery to `path`, then record the firing and start the workflow's run
    (both in one send: a refused delivery produces nothing)."""
    row, hook = await _hook(deps, path, raw)
    assert hook.secret_name is not None
    try:
        secret = await security.secrets.get(row["project"], hook.secret_name)
    except UnknownSecret:
        log.error("webhook_secret_missing", trigger_id=row["trigger_id"],
                  secret_name=hook.secret_name, project=row["project"])
        raise refuse_unknown(raw) from None  # the caller learns nothing of the hook
    timestamp = await verify(secret, headers, raw, time.time(),
                             security.settings.webhook_tolerance_s, security.webhook_guard,
                             scope=row["trigger_id"],
                             # only an authentic delivery learns what its headers must be
                             check=lambda given: check_headers(hook, given))
    digest = sign(secret, timestamp, raw).rpartition("v1=")[2]  # the delivery's own v1
    version, definition = await pinned(deps.pool, row)
    given = run_input(hook, document(headers, query, raw))
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
    _, position = await deps.producer.send_many([fired, start])
    log.info("webhook_fired", trigger_id=row["trigger_id"], run_id=run_id, path=path)
    return Delivered(run_id, row["trigger_id"], row["workflow_id"], version, position)
