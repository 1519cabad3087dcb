"""What a schedule is: cron or a fixed interval in an IANA time zone, a window, a missed policy."""

from __future__ import annotations

import difflib
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone
from enum import Enum
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bend.core.triggers.schedule_cron import cron_plan

__all__ = ["DAYS", "MissedPolicy", "ScheduleSpec", "Weekday", "Window", "zone"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MissedPolicy(str, Enum):
    """What to do with due times that passed while the platform was down."""

    SKIP = "skip"  # fire none of them
    RUN_ONCE = "run_once"  # fire the latest one only
    CATCH_UP = "catch_up"  # fire the latest `max_catch_up` of them, oldest first


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # "localtime" names whatever the host is set to, so a schedule using it would move
    # between machines.
    return frozenset(available_timezones() - {"localtime"}) | {"UTC"}


def zone(key: str) -> ZoneInfo:
    """The IANA time zone `key`, or ValueError suggesting the closest known names."""
    names = _zone_names()
    if key in names:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # listed but unreadable: report it as unknown below
    by_lower = {name.lower(): name for name in names}
    close = [by_lower[n] for n in difflib.get_close_matches(key.lower(), by_lower, n=3)]
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"unknown time zone {key!r}; {hint}use an IANA name such as 'Europe/Berlin', "
        "'America/New_York' or 'UTC'"
    )


class Window(BaseModel):
    """Local hours on given weekdays when a schedule may fire; start > end spans midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Weekday, ...] = DAYS  # the day a window opens on
    start: time
    end: time  # exclusive; 00:00 with a later start means "until midnight"

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: object) -> object:
        if isinstance(value, (list, tuple, set, frozenset)):
            return [v.lower().strip()[:3] if isinstance(v, str) else v for v in value]
        return value

    @field_validator("days")
    @classmethod
    def _some_days(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if not value:
            raise PydanticCustomError(
                "window_days", "the window has no days; list at least one, e.g. ['mon', 'fri']"
            )
        return tuple(d for d in DAYS if d in value)

    @field_validator("start", "end")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise PydanticCustomError(
                "window_time", "window times are local to the schedule's time zone; drop the "
                "offset (give '09:00', not '09:00+02:00')",
            )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise PydanticCustomError(
                "window_empty",
                "window start and end are both {at}; give an end after the start (one across "
                "midnight, like 22:00-02:00, is allowed) or drop the window",
                {"at": self.start.isoformat("minutes")},
            )
        return self

    def covers(self, t: time) -> bool:
        """Whether the local time of day `t` lies inside the window's hours, whatever the day."""
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def contains(self, local: datetime) -> bool:
        """Whether the naive local wall time `local` lies inside the window."""
        t, day = local.time(), DAYS[local.weekday()]
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


class ScheduleSpec(BaseModel):
    """When a schedule trigger is due: cron or every N seconds, its zone, window and policies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str | None = None  # 5 fields or a macro (@daily); read in `timezone`'s local time
    interval_seconds: int | None = Field(default=None, ge=1)  # absolute: every N s of UTC
    timezone: str = "UTC"
    window: Window | None = None
    start_at: AwareDatetime | None = None  # first possible due time (inclusive); intervals
    end_at: AwareDatetime | None = None  # count from it, else from 1970-01-01T00:00Z; exclusive
    missed_policy: MissedPolicy = MissedPolicy.SKIP
    max_catch_up: int = Field(default=10, ge=1)
    grace_seconds: int = Field(default=60, ge=0)  # later than this after due time is missed
    paused: bool = False

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return cron_plan(value).expression
        except ValueError as exc:
            raise PydanticCustomError("invalid_cron", "{reason}", {"reason": str(exc)}) from None

    @field_validator("timezone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        try:
            zone(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "unknown_timezone", "{reason}", {"reason": str(exc)}
            ) from None
        return value

    @field_validator("start_at", "end_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(dt_timezone.utc)

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleSpec:
        problems = []
        if (self.cron is None) == (self.interval_seconds is None):
            problems.append("give exactly one of cron (e.g. '30 2 * * *') or interval_seconds")
        if self.start_at and self.end_at and self.start_at >= self.end_at:
            problems.append(
                f"start_at {self.start_at.isoformat()} is not before end_at "
                f"{self.end_at.isoformat()}; move end_at later or drop it"
            )
        if self.cron is not None and self.window is not None:
            window = self.window
            # Times of day only: a spring-forward shift or the days may still rule out the
            # rest, which the calendar's search horizon bounds.
            if not any(window.covers(t) for t in cron_plan(self.cron).times):
                problems.append(
                    f"cron {self.cron!r} never fires between the window's "
                    f"{window.start.isoformat('minutes')} and {window.end.isoformat('minutes')}; "
                    "widen the window or change the cron's hours and minutes"
                )
        if problems:
            raise PydanticCustomError(
                "invalid_schedule", "{reason}", {"reason": "; ".join(problems)}
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return zone(self.timezone)

    @property
    def grace(self) -> timedelta:
        """How late a due time may still fire as on time rather than count as missed."""
        return timedelta(seconds=self.grace_seconds)
