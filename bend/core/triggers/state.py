"""A trigger's state, folded from its firings: how often it fired, when it is due next, its last
error and the dedupe keys it remembers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bend.core.events import TriggerFailed, TriggerFired
from bend.core.triggers.definitions import ScheduleTrigger
from bend.core.triggers.errors import TriggerMismatch
from bend.core.triggers.schedule_spec import ScheduleSpec
from bend.core.triggers.schedules import next_due

__all__ = ["RECENT_KEYS", "TriggerState", "apply", "fold", "initial_state", "record_error"]

RECENT_KEYS = 64  # dedupe keys a state remembers; the projection's unique key covers the rest


class TriggerState(BaseModel):
    """What a trigger has done: firings, last and next due time, last error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger_id: str
    fire_count: int = 0
    last_fired_at: datetime | None = None  # occurred_at of the latest firing
    last_due_at: datetime | None = None  # latest due time fired (schedules)
    next_due_at: datetime | None = None  # schedules only; None when paused or finished
    last_error: str | None = None
    last_error_at: datetime | None = None
    error_count: int = 0  # TriggerFailed events
    recent_keys: tuple[str, ...] = ()  # the last RECENT_KEYS dedupe keys, oldest first


def initial_state(trigger_id: str, trigger: Any, now: datetime) -> TriggerState:
    """The state of a trigger created at `now`: a schedule's first due time, nothing fired."""
    upcoming = None
    if isinstance(trigger, ScheduleTrigger):
        upcoming = next_due(trigger.schedule, None, now)
    return TriggerState(trigger_id=trigger_id, next_due_at=upcoming)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def apply(
    state: TriggerState, event: TriggerFired | TriggerFailed, schedule: ScheduleSpec | None = None
) -> TriggerState:
    """The state after `event`; a dedupe key seen among the recent ones counts once.

    A TriggerFailed counts as an error and becomes the last error (the latest by time).

    Several schedulers may each record the same firing; they share its dedupe key, so the
    copies change nothing. Given the trigger's `schedule`, `next_due_at` moves past the
    firing (backfilled past due times never move `last_due_at` back).
    """
    if event.trigger_id != state.trigger_id:
        raise TriggerMismatch(state.trigger_id, event.trigger_id)
    if isinstance(event, TriggerFailed):
        failed = state.model_copy(update={"error_count": state.error_count + 1})
        if state.last_error_at is not None and event.occurred_at < state.last_error_at:
            return failed
        return record_error(failed, f"{event.stage}: {event.error}", event.occurred_at)
    if event.dedupe_key in state.recent_keys:
        return state
    last_due = _later(state.last_due_at, event.due_at)
    upcoming = state.next_due_at
    if schedule is not None:
        upcoming = next_due(schedule, last_due, event.occurred_at)
    return state.model_copy(update={
        "fire_count": state.fire_count + 1,
        "last_fired_at": _later(state.last_fired_at, event.occurred_at),
        "last_due_at": last_due,
        "next_due_at": upcoming,
        "recent_keys": (*state.recent_keys, event.dedupe_key)[-RECENT_KEYS:],
    })


def fold(
    trigger_id: str, events: Iterable[TriggerFired | TriggerFailed],
    schedule: ScheduleSpec | None = None,
) -> TriggerState:
    """The state of `trigger_id` after its TriggerFired and TriggerFailed events, in log order."""
    state = TriggerState(trigger_id=trigger_id)
    for event in events:
        state = apply(state, event, schedule)
    return state


def record_error(state: TriggerState, error: str, at: datetime) -> TriggerState:
    """The state with `error` as its last error (kept across later firings until the next one)."""
    return state.model_copy(update={"last_error": error, "last_error_at": at})
