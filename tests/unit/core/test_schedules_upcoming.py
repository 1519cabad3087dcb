"""upcoming(): the next N due times are next_due's, each after the one before (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from bend.core.triggers.schedules import ScheduleSpec, due_times, next_due, upcoming

UTC = timezone.utc
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = ["30 2 * * *", "0 * * * *", "*/15 * * * *", "0 9-17 * * 1-5", "0 3 L * *",
         "0 6 * * 1#2"]


@settings(max_examples=60, deadline=None)
@given(cron=st.sampled_from(CRONS), tz=st.sampled_from(ZONES),
       now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC)),
       count=st.integers(min_value=1, max_value=8))
def test_upcoming_times_are_the_schedules_next_due_times_in_order(
        cron: str, tz: str, now: datetime, count: int) -> None:
    spec = ScheduleSpec(cron=cron, timezone=tz)
    times = upcoming(spec, None, now, count)
    assert len(times) == count
    assert times[0] == next_due(spec, None, now)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    lower = now - spec.grace
    assert times == due_times(spec, lower, times[-1] + timedelta(microseconds=1))


def test_a_paused_schedule_has_no_upcoming_times() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", paused=True)
    assert upcoming(spec, None, datetime(2026, 1, 1, tzinfo=UTC), 5) == []


def test_a_schedule_that_ends_has_only_the_times_before_its_end() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", end_at=datetime(2026, 1, 3, 12, tzinfo=UTC))
    times = upcoming(spec, None, datetime(2026, 1, 1, tzinfo=UTC), 5)
    assert times == [datetime(2026, 1, d, 9, tzinfo=UTC) for d in (1, 2, 3)]


def test_upcoming_counts_from_the_last_due_time_fired() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", timezone="Europe/Paris")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fired = datetime(2026, 1, 2, 8, tzinfo=UTC)  # 09:00 in Paris
    assert upcoming(spec, fired, now, 2) == [datetime(2026, 1, 3, 8, tzinfo=UTC),
                                             datetime(2026, 1, 4, 8, tzinfo=UTC)]
