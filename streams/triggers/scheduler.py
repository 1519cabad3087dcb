"""Schedule triggers: fire each due time once, apply the missed-run policy after downtime.

Every tick, for each enabled schedule this process owns: the due times missed by more than
the grace (`missed`, per the policy), then the next due time once the clock reaches it
(`next_due`). A due time is counted from the later of the last one fired and the time the
definition took effect, so a resumed schedule does not treat its pause as an outage.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from bend.core.triggers.schedules import dedupe_key, missed, next_due
from bend.core.triggers import ScheduleTrigger
from streams.triggers.book import Trigger, TriggerBook
from streams.triggers.firing import Firer

__all__ = ["Scheduler"]

log = structlog.get_logger(__name__)


class Scheduler:
    """Fires the due times of the schedules whose triggers-topic partition `owns` says is ours."""

    def __init__(self, book: TriggerBook, firer: Firer, owns: Callable[[int], bool]) -> None:
        self.book = book
        self.firer = firer
        self.owns = owns
        self._handled: dict[str, datetime] = {}  # due times tried here (fired or skipped)

    def _anchor(self, trigger: Trigger) -> datetime:
        times = [trigger.since, trigger.state.last_due_at, self._handled.get(trigger.trigger_id)]
        return max(t for t in times if t is not None)

    async def tick(self) -> int:
        """Fire what is due now; how many firings were produced."""
        now = self.firer.clock()
        produced = 0
        for trigger in self.book.of_type(ScheduleTrigger):
            if self.owns(trigger.partition):
                produced += await self._due(trigger, now)
        return produced

    async def _due(self, trigger: Trigger, now: datetime) -> int:
        spec = trigger.definition.schedule
        produced = 0
        gone = missed(spec, self._anchor(trigger), now)
        if gone.dropped:
            log.warning("schedule_runs_missed", trigger_id=trigger.trigger_id,
                        policy=gone.policy.value, firing=len(gone.due), dropped=gone.dropped)
        if gone.due or gone.dropped:
            self._handled[trigger.trigger_id] = now - spec.grace
        for due_at in gone.due:
            produced += await self._fire(trigger, due_at)
        upcoming = next_due(spec, self._anchor(trigger), now)
        if upcoming is not None and upcoming <= now:
            produced += await self._fire(trigger, upcoming)
        return produced

    async def _fire(self, trigger: Trigger, due_at: datetime) -> int:
        key = dedupe_key(trigger.trigger_id, due_at)
        run_id = None
        if key not in trigger.state.recent_keys:
            # A failed send raises before the due time is marked: the next tick tries again.
            run_id = await self.firer.fire(trigger, key, trigger.definition.input, due_at)
        # Fired, fired elsewhere or skipped (paused workflow): not tried again here.
        self._handled[trigger.trigger_id] = max(due_at, self._handled.get(trigger.trigger_id,
                                                                          due_at))
        return int(run_id is not None)
