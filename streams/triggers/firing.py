"""One firing: TriggerFired plus a StartRun with a deterministic run id, pinned to the
workflow's latest definition (the records the webhook receiver produces, from the same builders)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from bend.kafka.producer import RecordProducer
from bend.security.roles import Principal, Role
from bend.triggering import events as trigger_events
from bend.triggering import records
from streams.triggers.book import Trigger, TriggerBook, WorkflowBook

__all__ = ["Clock", "Firer", "clock_with_offset"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def clock_with_offset(offset_s: float) -> Clock:
    """The wall clock moved by `offset_s` (tests simulate an outage by moving it ahead)."""
    shift = timedelta(seconds=offset_s)
    return lambda: datetime.now(timezone.utc) + shift


class Firer:
    """Produces a trigger's firings; skips paused or unknown workflows."""

    def __init__(self, producer: RecordProducer | None, book: TriggerBook, workflows: WorkflowBook,
                 clock: Clock) -> None:
        self.producer = producer
        self.book = book
        self.workflows = workflows
        self.clock = clock

    def startable(self, trigger: Trigger) -> tuple[int, Any] | None:
        """The workflow's (latest version, definition), or None while it is paused or unknown."""
        if trigger.workflow_id in self.workflows.paused:
            return None
        return self.workflows.resolve(trigger.workflow_id)

    async def fire(self, trigger: Trigger, dedupe_key: str, run_input: Any,
                   due_at: datetime | None = None) -> str | None:
        """Record one firing and start its run; the run id, or None if it could not start.

        The run id is derived from the dedupe key, so a second scheduler firing the same key
        sends the same StartRun, which the orchestrator rejects as a duplicate.
        """
        pinned = self.startable(trigger)
        if pinned is None:
            log.info("trigger_skipped_workflow_not_startable", trigger_id=trigger.trigger_id,
                     workflow_id=trigger.workflow_id, dedupe_key=dedupe_key)
            return None
        version, definition = pinned
        key = f"{trigger.trigger_type}:{dedupe_key}"
        run_id = records.run_id_for(trigger.workflow_id, key)
        at = self.clock()
        fired = trigger_events.fired(trigger.row(), run_id, version, dedupe_key, run_input, at)
        fired = dataclasses.replace(fired, due_at=due_at)
        caller = Principal(subject=f"trigger:{trigger.trigger_id}", project=trigger.project,
                           role=Role.OPERATOR)
        start = dataclasses.replace(
            records.start_run(run_id, trigger.workflow_id, version, definition, run_input, key,
                              trigger.tenant, caller, at),
            trigger_id=trigger.trigger_id, causation_id=fired.event_id)
        assert self.producer is not None, "start the producer before firing"
        await self.producer.send_many([fired, start])  # KafkaUnavailable: tried again later
        self.book.fired(fired)  # at once, not when the topic echoes it: no second firing
        log.info("trigger_fired", trigger_id=trigger.trigger_id, run_id=run_id,
                 dedupe_key=dedupe_key)
        return run_id
