"""A schedule's due times as absolute UTC instants: daylight-saving rules, windows, intervals.

Cron fields are read against the wall clock of the schedule's time zone. Where that clock
jumps, Bend follows Vixie cron (Debian's cron(8)), deciding by the hour field:

* Schedules that name particular hours (`30 2 * * *`, `0 9-17 * * *`) keep to local times.
  A time skipped by a spring-forward gap fires once at the first instant after the gap
  (02:30 on 2026-03-29 in Europe/Berlin fires at 03:00 CEST); several skipped times, or a
  skipped time and a real one at the gap's end, fire once together. A time repeated by a
  fall-back fires once, at its first occurrence (01:30 EDT, not 01:30 EST, on 2026-11-01 in
  America/New_York).
* Schedules matching every hour (`0 * * * *`, `*/15 * * * *`) follow absolute time: they fire
  at each instant whose local reading matches. Skipped readings never happen, so nothing
  fires for them; repeated readings are distinct instants, so each fires once (a Berlin
  hourly job fires at 02:00 CEST and again at 02:00 CET, an hour apart, on 2026-10-25).
* Intervals are absolute: every N seconds of UTC from `start_at` (else 1970-01-01T00:00Z).

A window is read on the wall clock of each due instant (fall-back repeats included); the
search for the next opening steps through clock changes so none is jumped over.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from bend.core.triggers.schedule_cron import CronPlan, cron_plan
from bend.core.triggers.schedule_spec import DAYS, ScheduleSpec, Window

__all__ = ["EPOCH", "count_and_tail", "iter_due", "resolve"]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _transition(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in (before, after] whose UTC offset differs from before's."""
    lo, hi = int(before.timestamp() // 1), int(-(-after.timestamp() // 1))
    start = _offset(before, tz)
    while hi - lo > 1:  # tz data changes offsets on whole seconds
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, UTC), tz) == start:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def resolve(
    naive: datetime, tz: ZoneInfo, wall_clock: bool
) -> tuple[datetime | None, datetime | None]:
    """The instants a local wall time fires at: (first, repeat), per the module's rules."""
    early = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if early == late:
        return early, None
    if early < late:  # a fall-back repeats this reading
        return early, (None if wall_clock else late)
    # A spring-forward gap skips it: `late` lies before the jump, `early` after it.
    return (_transition(late, early, tz) if wall_clock else None), None


def _local_floor(after: datetime, tz: ZoneInfo) -> datetime:
    """The earliest local reading of any instant from `after` on (clocks may step back)."""
    base = after.astimezone(UTC).replace(tzinfo=None)
    offsets = [_offset(after, tz) or timedelta(0)]
    # Offsets change on whole hours or, rarely, half hours, and never twice in two days.
    for step in (-_SECOND, *(timedelta(hours=h) for h in range(1, 49))):
        try:
            offsets.append(_offset(after + step, tz) or timedelta(0))
        except OverflowError:
            continue  # the ends of the calendar
    return base + min(offsets)


def _cron_instants(plan: CronPlan, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    floor = _local_floor(after, tz)
    try:
        days = croniter(plan.day_expression, datetime.combine(floor.date(), time()) - _SECOND)
    except OverflowError:
        return  # the first day of the calendar; no schedule reaches back there
    repeats: list[datetime] = []  # second occurrences, which come after later readings
    last: datetime | None = None
    while True:
        try:
            day = days.get_next(datetime).date()
        except (CroniterBadDateError, OverflowError, ValueError):
            break  # ran off the calendar
        times = plan.times
        if day == floor.date():
            times = times[bisect_left(times, floor.time()):]
        for tod in times:
            try:
                first, repeat = resolve(datetime.combine(day, tod), tz, plan.wall_clock)
            except OverflowError:
                return
            if repeat is not None:
                heapq.heappush(repeats, repeat)
            if first is None:
                continue
            while repeats and repeats[0] < first:
                earlier = heapq.heappop(repeats)
                if earlier >= after and (last is None or earlier > last):
                    last = earlier
                    yield earlier
            if first >= after and (last is None or first > last):
                last = first
                yield first
    yield from (x for x in sorted(repeats) if x >= after and (last is None or x > last))


def _anchor(spec: ScheduleSpec) -> datetime:
    return spec.start_at or EPOCH


def _interval_instants(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    step = timedelta(seconds=spec.interval_seconds or 1)
    anchor = _anchor(spec)
    try:
        at = anchor + step * -((anchor - after) // step)  # the first grid point >= after
        while True:
            yield at
            at += step
    except OverflowError:
        return


def _raw(spec: ScheduleSpec, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    if spec.cron is not None:
        return _cron_instants(cron_plan(spec.cron), tz, after)
    return _interval_instants(spec, after)


def _next_opening(window: Window, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The first instant after `now` when the window's wall clock reaches its start again."""
    local = now.astimezone(tz).replace(tzinfo=None)
    for ahead in range(9):
        day = local.date() + timedelta(days=ahead)
        if DAYS[day.weekday()] not in window.days:
            continue
        naive = datetime.combine(day, window.start)
        shifted, _ = resolve(naive, tz, wall_clock=True)
        _, repeat = resolve(naive, tz, wall_clock=False)
        later = [t for t in (shifted, repeat) if t is not None and t > now]
        if later:
            opening = min(later)
            # A fall-back can carry the clock back into the window without passing its
            # start: resume the search at the clock change instead of jumping past it.
            if _offset(now, tz) != _offset(opening, tz):
                opening = min(opening, _transition(now, opening, tz))
            return opening
    return None


def iter_due(spec: ScheduleSpec, after: datetime, until: datetime) -> Iterator[datetime]:
    """Due instants in [after, until), ascending, within start_at/end_at and the window."""
    lower = max(after, spec.start_at) if spec.start_at else after
    upper = min(until, spec.end_at) if spec.end_at else until
    if lower >= upper:
        return
    tz = spec.zone
    raw = _raw(spec, tz, lower)
    while (at := next(raw, None)) is not None and at < upper:
        if spec.window is None or spec.window.contains(at.astimezone(tz).replace(tzinfo=None)):
            yield at
            continue
        opening = _next_opening(spec.window, tz, at)
        if opening is None or opening >= upper:
            return
        raw = _raw(spec, tz, opening)


def count_and_tail(
    spec: ScheduleSpec, after: datetime, until: datetime, keep: int
) -> tuple[int, list[datetime]]:
    """How many due times lie in [after, until), and the latest `keep` of them, oldest first."""
    if spec.interval_seconds is not None and spec.window is None:
        # Plain intervals are arithmetic, so a long outage costs nothing to count.
        lower = max(after, spec.start_at) if spec.start_at else after
        upper = min(until, spec.end_at) if spec.end_at else until
        if lower >= upper:
            return 0, []
        step, anchor = timedelta(seconds=spec.interval_seconds), _anchor(spec)
        first = -((anchor - lower) // step)
        last = -((anchor - upper) // step) - 1
        count = max(0, last - first + 1)
        return count, [anchor + step * k for k in range(max(first, last - keep + 1), last + 1)]
    tail: deque[datetime] = deque(maxlen=keep)
    count = 0
    for at in iter_due(spec, after, until):
        count += 1
        tail.append(at)
    return count, list(tail)
