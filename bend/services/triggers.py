"""Triggers of a workflow: list them with their next due times, add, change, pause, resume and
remove them; the API's routes, the web UI and the CLI (through the API) share these."""

from __future__ import annotations

import contextlib
import secrets as random_secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from bend.core.commands import Command
from bend.core.events import Event
from bend.core.triggers import KafkaTrigger, ScheduleTrigger, WebhookTrigger, parse_trigger
from bend.core.triggers.errors import BackfillTooLarge, InvalidTimeRange
from bend.core.triggers.schedule_spec import ScheduleSpec
from bend.core.triggers.schedules import backfill, dedupe_key, upcoming
from bend.kafka.position import Position
from bend.security.adminlog import AdminAction
from bend.security.dependencies import Security
from bend.security.roles import Principal, require
from bend.services import workflows
from bend.services.deps import WatchingDeps
from bend.services.trigger_checks import (
    InvalidBackfill, TriggerTypeMismatch, UnknownTrigger, WebhookPathTaken, accepted, pinned,
)
from bend.triggering import events as trigger_events
from projections.queries import triggers as queries
from projections.queries.turns import take_turn

__all__ = [
    "Backfilled", "ReplayRequested", "TriggerWritten", "backfill_trigger", "create_trigger",
    "delete_trigger", "get_trigger", "list_triggers", "next_fire_times", "preview",
    "recent_errors", "replay_trigger", "store_webhook_secret", "update_trigger", "webhook_url",
]

_WAIT_S = 10.0
_SECRET_BYTES = 32


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class TriggerWritten:
    """A trigger created, changed or removed; `position` is the last event sent (None: none)."""

    trigger_id: str
    workflow_id: str
    type: str
    enabled: bool
    changed: bool
    webhook_path: str | None = None
    removed: bool = False
    position: Position | None = None


def webhook_url(base_url: str, path: str) -> str:
    """Where a webhook trigger listening on `path` is posted to, on the server at `base_url`."""
    return f"{base_url.rstrip('/')}/webhooks/{path}"


def next_fire_times(row: Mapping[str, Any], now: datetime, count: int) -> list[datetime]:
    """A `triggers` row's next `count` due times (schedules that fire only; else none)."""
    if not row["enabled"] or row["trigger_type"] != "schedule":
        return []
    trigger = parse_trigger(row["definition"])
    if not isinstance(trigger, ScheduleTrigger):
        return []
    return upcoming(trigger.schedule, row["last_due_at"], now, count)


def preview(spec: ScheduleSpec, now: datetime, count: int) -> list[datetime]:
    """A new schedule's first `count` due times, as the scheduler will fire them."""
    return upcoming(spec, None, now, count)


async def list_triggers(deps: WatchingDeps, principal: Principal, workflow_id: str
                        ) -> list[dict[str, Any]]:
    """The workflow's triggers (rows of the read model), oldest first."""
    require(principal, "triggers:read")
    await workflows.get_workflow(deps, principal, workflow_id)
    return await queries.list_triggers(deps.pool, principal.project, workflow_id)


async def get_trigger(deps: WatchingDeps, principal: Principal, trigger_id: str
                      ) -> dict[str, Any]:
    """The trigger's row in the caller's project, or UnknownTrigger."""
    require(principal, "triggers:read")
    row = await queries.get_trigger(deps.pool, principal.project, trigger_id)
    if row is None:
        raise UnknownTrigger(trigger_id)
    return row


async def recent_errors(deps: WatchingDeps, principal: Principal, trigger_id: str,
                        limit: int) -> list[dict[str, Any]]:
    """The trigger's latest failures (TriggerFailed), newest first."""
    await get_trigger(deps, principal, trigger_id)
    return await queries.list_errors(deps.pool, trigger_id, limit)


@contextlib.asynccontextmanager
async def _path_claimed(deps: WatchingDeps, trigger: Any, trigger_id: str
                        ) -> AsyncIterator[None]:
    """For a webhook: hold its path's lock (until the read models show the event sent inside)
    and refuse a path another trigger listens on. Other triggers pass through."""
    if not isinstance(trigger, WebhookTrigger):
        yield
        return
    conn: asyncpg.Connection
    async with deps.pool.acquire() as conn, conn.transaction():
        # Paths are global (/webhooks/<path>); API processes take turns to claim one.
        await take_turn(conn, f"bend.webhook.path:{trigger.path}")
        holder = await queries.webhook_by_path(conn, trigger.path)
        if holder is not None and holder["trigger_id"] != trigger_id:
            raise WebhookPathTaken(trigger.path)
        yield


async def _send(deps: WatchingDeps, event: Event, *, wait: bool) -> Position:
    position: Position = await deps.producer.send(event)
    if wait:  # the next claimant of the path (or the next page) must see this one
        await deps.watcher.wait_for([position], timeout_s=_WAIT_S)
    return position


async def create_trigger(deps: WatchingDeps, principal: Principal, workflow_id: str,
                         data: Mapping[str, Any], *, enabled: bool = True,
                         wait: bool = False) -> TriggerWritten:
    """Add a trigger to the workflow (InvalidTrigger lists every problem of its definition);
    `wait`: return once the read models show it."""
    require(principal, "triggers:write")
    workflow = await workflows.get_workflow(deps, principal, workflow_id, live=True)
    trigger, definition = accepted(data)
    trigger_id = str(uuid.uuid4())
    event: Event = trigger_events.registered(trigger_id, definition, workflow_id,
                                             workflow["latest_version"], deps.settings.tenant,
                                             principal, _now())
    hook = isinstance(trigger, WebhookTrigger)
    async with _path_claimed(deps, trigger, trigger_id):
        position = await _send(deps, event, wait=wait or hook or not enabled)
        if not enabled:  # registered enabled; disabling is the next event
            event = trigger_events.updated({"trigger_id": trigger_id, "workflow_id": workflow_id},
                                           definition, False, deps.settings.tenant, principal,
                                           _now())
            position = await _send(deps, event, wait=wait)
    return TriggerWritten(trigger_id, workflow_id, trigger.type, enabled, True,
                          trigger.path if hook else None, position=position)


async def update_trigger(deps: WatchingDeps, principal: Principal, trigger_id: str,
                         data: Mapping[str, Any] | None, enabled: bool, *,
                         wait: bool = False) -> TriggerWritten:
    """Replace the trigger's definition (None keeps it) and/or enable or disable it (pause,
    resume); no event if nothing changes."""
    require(principal, "triggers:write")
    row = await get_trigger(deps, principal, trigger_id)
    trigger, definition = accepted(row["definition"] if data is None else data)
    path = trigger.path if isinstance(trigger, WebhookTrigger) else None
    written = TriggerWritten(trigger_id, row["workflow_id"], trigger.type, enabled, False, path)
    if definition == row["definition"] and enabled == row["enabled"]:
        return written
    event = trigger_events.updated(row, definition, enabled, deps.settings.tenant, principal,
                                   _now())
    async with _path_claimed(deps, trigger, trigger_id):
        moved = path is not None and path != row["webhook_path"]
        position = await _send(deps, event, wait=wait or moved)
    return TriggerWritten(trigger_id, row["workflow_id"], trigger.type, enabled, True, path,
                          position=position)


async def delete_trigger(deps: WatchingDeps, principal: Principal, trigger_id: str, *,
                         wait: bool = False) -> TriggerWritten:
    """Remove the trigger; it fires no more (its firings stay in the log and the audit)."""
    require(principal, "triggers:write")
    row = await get_trigger(deps, principal, trigger_id)
    event = trigger_events.removed(row, deps.settings.tenant, principal, _now())
    position = await _send(deps, event, wait=wait)
    return TriggerWritten(trigger_id, row["workflow_id"], row["trigger_type"], False, True,
                          removed=True, position=position)


async def store_webhook_secret(security: Security, principal: Principal, name: str, *,
                               client_ip: str) -> str:
    """A new random signing secret stored as `name` (sent to no host), returned once to show;
    a webhook's own secret, so adding a webhook (triggers:write) may create it."""
    require(principal, "triggers:write")
    value = random_secrets.token_urlsafe(_SECRET_BYTES)
    info = await security.secrets.set(principal.project, name, value, [])
    await security.admin_log.record(AdminAction(
        principal.project, principal.subject, "secret.set", f"secret:{name}", client_ip,
        {"created": info.created_at == info.updated_at, "value_changed": True,
         "for": "webhook"}))
    return value


@dataclass(frozen=True, slots=True)
class Backfilled:
    """A backfill's due times, oldest first, each with its run and `started` or
    `already_fired`; `position` is the last event sent (None: none was)."""

    trigger_id: str
    runs: tuple[tuple[datetime, str, str], ...]  # (due_at, run_id, status)
    position: Position | None = None

    @property
    def started(self) -> int:
        """How many due times this backfill started."""
        return sum(status == "started" for _, _, status in self.runs)


async def backfill_trigger(deps: WatchingDeps, principal: Principal, trigger_id: str,
                           start: datetime, end: datetime, max_runs: int) -> Backfilled:
    """Fire a schedule's due times in [start, end) that have not fired yet, oldest first.

    Each due time fires once whoever fires it (its key and run id are the scheduler's); one
    fired already is reported as `already_fired` and not sent again.
    """
    require(principal, "triggers:write")
    row = await get_trigger(deps, principal, trigger_id)
    trigger = parse_trigger(row["definition"])
    if not isinstance(trigger, ScheduleTrigger):
        raise TriggerTypeMismatch(trigger_id, row["trigger_type"], "schedule", "be backfilled")
    now = _now()
    try:
        due = backfill(trigger.schedule, start, end, max_runs, now=now)
    except (InvalidTimeRange, BackfillTooLarge) as exc:
        raise InvalidBackfill(str(exc)) from None
    version, definition = await pinned(deps.pool, row)
    keys = [dedupe_key(trigger_id, at) for at in due]
    before = await queries.fired_keys(deps.pool, trigger_id, keys)
    runs: list[tuple[datetime, str, str]] = []
    batch: list[Event | Command] = []
    for at, key in zip(due, keys, strict=False):
        fired, begin = trigger_events.firing(row, key, version, definition, trigger.input, now,
                                             at)
        if key in before:
            runs.append((at, before[key] or fired.run_id or "", "already_fired"))
            continue
        batch += [fired, begin]
        runs.append((at, begin.run_id or "", "started"))
    position = (await deps.producer.send_many(batch))[-1] if batch else None
    return Backfilled(trigger_id, tuple(runs), position)


@dataclass(frozen=True, slots=True)
class ReplayRequested:
    """A Kafka trigger's replay, asked of the triggers worker."""

    trigger_id: str
    replay_id: str
    position: Position


async def replay_trigger(deps: WatchingDeps, principal: Principal, trigger_id: str, *,
                         partition: int | None, from_offset: int | None,
                         from_time: datetime | None, force: bool) -> ReplayRequested:
    """Ask the triggers worker to re-read a Kafka trigger's topic from an offset or a time
    (`force`: records that fired before fire once more); TriggerTypeMismatch for another
    kind of trigger."""
    require(principal, "triggers:write")
    row = await get_trigger(deps, principal, trigger_id)
    if not isinstance(parse_trigger(row["definition"]), KafkaTrigger):
        raise TriggerTypeMismatch(trigger_id, row["trigger_type"], "kafka", "be replayed")
    event = trigger_events.replay_requested(
        row, str(uuid.uuid4()), partition=partition, from_offset=from_offset,
        from_time=from_time, force=force, principal=principal, now=_now())
    position = await deps.producer.send(event)
    return ReplayRequested(trigger_id, event.replay_id, position)
