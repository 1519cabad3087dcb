"""How long a step attempt waited and ran: one definition for the CLI, the API, the UI and
replay.

An attempt is *queued* from being scheduled until it began, and *runs* from then until it
ended. When it began: for an executor's step, its end less the duration the executor measured
around the work (`duration_ms` of StepSucceeded/StepFailed; the "started" report is sent only
after `report_started_after_ms`, so its time is late by that much); else when the step was
reported started; else (a step the engine runs itself: transform, condition, delay) when it was
scheduled, so it was never queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["AttemptTiming", "attempt_timing"]


@dataclass(frozen=True, slots=True)
class AttemptTiming:
    """When an attempt began, and how long it was queued and ran (None while unknown)."""

    began_at: datetime | None
    queued_ms: int | None
    run_ms: int | None


def _ms(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() * 1000))


def attempt_timing(scheduled_at: datetime | None, started_at: datetime | None = None,
                   ended_at: datetime | None = None, duration_ms: int | None = None,
                   now: datetime | None = None) -> AttemptTiming:
    """The attempt's timing from what the log says of it (`now`: for one still running)."""
    began = started_at
    if ended_at is not None and duration_ms:
        began = ended_at - timedelta(milliseconds=duration_ms)
        if scheduled_at is not None and began < scheduled_at:
            began = scheduled_at  # clocks of two hosts: never queued less than nothing
    elif began is None and ended_at is not None:
        began = scheduled_at
    queued = _ms(scheduled_at, began) if scheduled_at is not None and began is not None else None
    end = ended_at or now
    run = _ms(began, end) if began is not None and end is not None else None
    if ended_at is not None and duration_ms:
        run = duration_ms
    return AttemptTiming(began, queued, run)
