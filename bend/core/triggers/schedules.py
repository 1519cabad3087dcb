"""When schedules are due: the next due time, missed runs after an outage, backfill, dedupe keys.

Everything here is pure: the current time comes in as `now`. The daylight-saving and window
rules live in `bend.core.triggers.schedule_calendar` (its docstring states them). A firing is
an event keyed by `dedupe_key(trigger_id, due_at)`, so several schedulers computing the same due
time
produce the same key and consumers keep the first.

How an edge drives one schedule (state from `bend.core.triggers.TriggerState`):

1. after a restart: `missed(spec, state.last_due_at, now)` says which passed due times to fire;
2. then `next_due(spec, last_due, now)` is the next one (fire it when `now` reaches it; one
   already passed by less than `grace_seconds` is returned and fires at once);
3. after resuming a paused schedule, pass the resume time as `last_due` (when it is later), so
   the paused stretch does not count as an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice

from bend.core.triggers.schedule_calendar import count_and_tail, iter_due
from bend.core.triggers.errors import BackfillTooLarge, InvalidTimeRange, NaiveDatetime
from bend.core.triggers.schedule_spec import MissedPolicy, ScheduleSpec, Window

__all__ = [
    "HORIZON", "MissedPolicy", "MissedRuns", "ScheduleSpec", "Window", "backfill", "dedupe_key",
    "due_times", "missed", "next_due", "upcoming",
]

# How far next_due looks ahead; eight years holds a leap day (29 February) even across 2100.
HORIZON = timedelta(days=8 * 366)
_TICK = timedelta(microseconds=1)  # datetimes' resolution: "after t" is "from t + _TICK"


@dataclass(frozen=True, slots=True)
class MissedRuns:
    """The due times to fire after an outage (oldest first) and how many the policy dropped."""

    policy: MissedPolicy
    due: tuple[datetime, ...] = ()
    dropped: int = 0


_EARLIEST = datetime(2, 1, 1, tzinfo=timezone.utc)  # a day's margin from datetime's ends,
_LATEST = datetime(9998, 12, 31, tzinfo=timezone.utc)  # where local times cannot be formed


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(name, value)
    if not _EARLIEST <= value <= _LATEST:
        raise InvalidTimeRange(
            f"{name} {value.isoformat()} lies outside the years 2-9998 schedules cover; "
            "give a time within them"
        )
    return value.astimezone(timezone.utc)


def due_times(
    spec: ScheduleSpec, after: datetime, until: datetime, *, limit: int | None = None
) -> list[datetime]:
    """Due times in [after, until) as aware UTC datetimes, ascending; `paused` is not consulted."""
    lower, upper = _aware("after", after), _aware("until", until)
    return list(islice(iter_due(spec, lower, upper), limit))


def next_due(spec: ScheduleSpec, last_due: datetime | None, now: datetime) -> datetime | None:
    """The first due time after `last_due` not yet missed at `now`; None if paused or none left."""
    if spec.paused:
        return None
    lower = _aware("now", now) - spec.grace
    if last_due is not None:
        lower = max(lower, _aware("last_due", last_due) + _TICK)
    try:
        until = lower + HORIZON
    except OverflowError:
        until = datetime.max.replace(tzinfo=timezone.utc)
    return next(iter_due(spec, lower, until), None)


def upcoming(spec: ScheduleSpec, last_due: datetime | None, now: datetime,
             count: int) -> list[datetime]:
    """The next `count` due times as the scheduler fires them (`next_due`, after each in turn)."""
    times: list[datetime] = []
    after = last_due
    while len(times) < count and (at := next_due(spec, after, now)) is not None:
        times.append(at)
        after = at
    return times


def missed(spec: ScheduleSpec, last_due: datetime | None, now: datetime) -> MissedRuns:
    """Due times after `last_due` that `now` is past by more than the grace, per the policy.

    skip fires none, run_once the latest only, catch_up the latest `max_catch_up`; `dropped`
    counts the rest. A schedule that never fired (`last_due` None) or is paused missed nothing.
    """
    policy = spec.missed_policy
    if spec.paused or last_due is None:
        return MissedRuns(policy=policy)
    keep = {
        MissedPolicy.SKIP: 0, MissedPolicy.RUN_ONCE: 1, MissedPolicy.CATCH_UP: spec.max_catch_up,
    }[policy]
    lower = _aware("last_due", last_due) + _TICK
    count, tail = count_and_tail(spec, lower, _aware("now", now) - spec.grace, keep)
    return MissedRuns(policy=policy, due=tuple(tail), dropped=count - len(tail))


def backfill(
    spec: ScheduleSpec, start: datetime, end: datetime, cap: int, *, now: datetime | None = None
) -> list[datetime]:
    """The due times in [start, end), oldest first, for a requested re-run of a past range.

    Windows and start_at/end_at apply, `paused` does not (a backfill is asked for explicitly).
    Refuses a range holding more than `cap` due times and, given `now`, one ending after it.
    """
    lower, upper = _aware("start", start), _aware("end", end)
    if lower >= upper:
        raise InvalidTimeRange(
            f"backfill start {lower.isoformat()} is not before its end {upper.isoformat()}; "
            "give start < end"
        )
    if now is not None and upper > _aware("now", now):
        raise InvalidTimeRange(
            f"backfill end {upper.isoformat()} is in the future; end it at or before now "
            "(future due times fire on their own)"
        )
    if cap < 1:
        raise InvalidTimeRange(f"backfill cap is {cap}; give a cap of at least 1")
    times = list(islice(iter_due(spec, lower, upper), cap + 1))
    if len(times) > cap:
        raise BackfillTooLarge(cap, lower, upper)
    return times


def dedupe_key(trigger_id: str, due_at: datetime) -> str:
    """The key of one firing: `<trigger_id>@<due time in UTC, ISO 8601, Z>`, equal across zones."""
    at = _aware("due_at", due_at)
    stamp = at.isoformat(timespec="microseconds" if at.microsecond else "seconds")
    return f"{trigger_id}@{stamp.removesuffix('+00:00')}Z"
