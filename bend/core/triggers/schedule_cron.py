"""Cron expressions read as local calendar days times local times of day, checked field by field.

A 5-field cron expression (minute hour day-of-month month day-of-week) is split into the days
it matches (croniter walks them, so `L`, `1#2`, names and the day-of-month/day-of-week OR of
classic cron behave as croniter documents) and the sorted times of day it matches on each such
day, which every matching day shares. Walking days instead of minutes keeps dense schedules
cheap and gives the daylight-saving rules in `schedule_calendar` whole local times to work on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache

from croniter import CroniterBadDateError, croniter

__all__ = ["CronPlan", "FIELDS", "MACROS", "cron_plan"]

FIELDS: tuple[tuple[str, str], ...] = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31 or L"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 (0 and 7 are Sunday) or SUN-SAT, n#k for the k-th weekday n"),
)

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True, slots=True)
class CronPlan:
    """A parsed cron expression: the days croniter matches and the local times on each."""

    expression: str
    day_expression: str  # "0 0 <dom> <month> <dow>": croniter walks matching days with it
    times: tuple[time, ...]  # sorted local times of day
    # True unless every hour of the day matches: such schedules keep to the local clock
    # (shifted out of a spring-forward gap, once in a fall-back repeat); hourly-or-finer
    # ones follow absolute time instead (see schedule_calendar).
    wall_clock: bool


def _field_problem(index: int, value: str) -> str | None:
    probe = ["*"] * 5
    probe[index] = value
    if croniter.is_valid(" ".join(probe)):
        return None
    name, allowed = FIELDS[index]
    return f"cron field {index + 1} ({name}) {value!r} is not valid; use {allowed}"


@lru_cache(maxsize=512)
def cron_plan(expression: str) -> CronPlan:
    """Parse `expression`, or raise ValueError naming each bad field and what it allows."""
    text = " ".join(expression.split())
    text = MACROS.get(text.lower(), text)
    if text.startswith("@"):
        known = ", ".join(sorted(MACROS))
        raise ValueError(f"cron macro {text!r} is not supported; use one of {known}")
    parts = text.split(" ") if text else []
    if len(parts) != 5:
        raise ValueError(
            f"cron expression {expression!r} has {len(parts)} fields; give exactly 5 (minute "
            "hour day-of-month month day-of-week), e.g. '30 2 * * *'; for seconds use "
            "interval_seconds"
        )
    problems = [p for i, part in enumerate(parts) if (p := _field_problem(i, part))]
    if problems:
        raise ValueError("; ".join(problems))
    if not croniter.is_valid(text):
        raise ValueError(f"cron expression {text!r} is not valid; check its fields together")
    (minutes, hours, *_), _nth = croniter.expand(text)
    minute_set = range(60) if "*" in minutes else sorted(int(m) for m in minutes)
    hour_set = range(24) if "*" in hours else sorted(int(h) for h in hours)
    day_expression = " ".join(["0", "0", *parts[2:]])
    try:
        croniter(day_expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            f"cron expression {text!r} matches no calendar day (like 30 February); fix its "
            "day-of-month or month"
        ) from None
    return CronPlan(
        expression=text,
        day_expression=day_expression,
        times=tuple(time(h, m) for h in hour_set for m in minute_set),
        wall_clock=len(set(hour_set)) < 24,
    )
