"""Typed errors of triggers and schedules; each says what was wrong and what to do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bend.core.errors import BendError

__all__ = [
    "BackfillTooLarge", "InvalidTimeRange", "InvalidTrigger", "NaiveDatetime", "ScheduleError",
    "TriggerMismatch",
]


class ScheduleError(BendError):
    """Root of the errors about triggers, schedules and their due times."""


class InvalidTrigger(ScheduleError):
    """A trigger definition (or its schedule) was refused; `problems` lists every reason."""

    status = 422

    def __init__(self, problems: Sequence[str]) -> None:
        listed = "; ".join(problems)
        super().__init__(f"trigger refused: {listed}; fix the definition and create it again")
        self.problems = tuple(problems)


class NaiveDatetime(ScheduleError):
    """A time without a UTC offset reached the scheduler, which cannot place it."""

    def __init__(self, name: str, value: datetime) -> None:
        super().__init__(
            f"{name} {value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime(..., tzinfo=timezone.utc))"
        )
        self.name = name


class InvalidTimeRange(ScheduleError):
    """A range of times that is empty, reversed or in the future where a past one is needed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class BackfillTooLarge(ScheduleError):
    """A backfill range holds more due times than the cap allows."""

    def __init__(self, cap: int, start: datetime, end: datetime) -> None:
        super().__init__(
            f"backfill from {start.isoformat()} to {end.isoformat()} holds more than {cap} due "
            "times; narrow the range or raise the cap"
        )
        self.cap = cap


class TriggerMismatch(ScheduleError):
    """An event of one trigger was folded into another trigger's state (a routing bug)."""

    def __init__(self, state_trigger_id: str, event_trigger_id: str) -> None:
        super().__init__(
            f"TriggerFired of trigger {event_trigger_id!r} was applied to the state of "
            f"{state_trigger_id!r}; fold each trigger's events into its own state"
        )
        self.trigger_id = state_trigger_id
