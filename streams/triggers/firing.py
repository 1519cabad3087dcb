"""One firing: TriggerFired plus a StartRun with a deterministic run id, pinned to the
workflow's latest definition (the records the webhook receiver produces, from the same builders)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from bend.core.errors import BendError
from bend.kafka.producer import RecordProducer
from bend.triggering import events as trigger_events
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

    async def failed(self, trigger: Trigger, stage: str, error: str,
                     source: str | None = None) -> None:
        """Record that `trigger` failed at `stage` (poll, subscribe, decode, filter, map, start);
        a failure to record it is logged, never raised (the trigger goes on)."""
        event = trigger_events.failed(trigger.row(), stage, error, self.clock(), source)
        log.warning("trigger_failed", trigger_id=trigger.trigger_id, stage=stage, error=error,
                    source=source)
        try:
            assert self.producer is not None, "start the producer before recording failures"
            await self.producer.send(event)
        except BendError as exc:
            log.error("trigger_failure_not_recorded", trigger_id=trigger.trigger_id,
                      error=str(exc))
            return
        self.book.fold(event)

    async def fire(self, trigger: Trigger, dedupe_key: str, run_input: Any,
                   due_at: datetime | None = None) -> str | None:
        """Record one firing and start its run; the run id, or None if it could not start.

        The run id is derived from the dedupe key, so a second scheduler firing the same key
        sends the same StartRun, which the orchestrator rejects as a duplicate.
        """
        pinned = self.startable(trigger)
        if pinned is None and trigger.workflow_id not in self.workflows.paused:
            await self.failed(trigger, "start", f"workflow {trigger.workflow_id} has no version "
                              "to start (unknown or deleted)", dedupe_key)
            return None
        if pinned is None:
            log.info("trigger_skipped_workflow_not_startable", trigger_id=trigger.trigger_id,
                     workflow_id=trigger.workflow_id, dedupe_key=dedupe_key)
            return None
        version, definition = pinned
        fired, start = trigger_events.firing(trigger.row(), dedupe_key, version, definition,
                                             run_input, self.clock(), due_at)
        run_id = start.run_id or ""
        assert self.producer is not None, "start the producer before firing"
        await self.producer.send_many([fired, start])  # KafkaUnavailable: tried again later
        self.book.fired(fired)  # at once, not when the topic echoes it: no second firing
        log.info("trigger_fired", trigger_id=trigger.trigger_id, run_id=run_id,
                 dedupe_key=dedupe_key)
        return run_id
