"""Daylight-saving rules of cron schedules, on the real 2026 transitions of several zones.

Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET.
America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST.
America/Santiago moves at midnight, Australia/Lord_Howe by half an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from bend.core.triggers.schedules import ScheduleSpec, due_times, next_due

UTC = timezone.utc
BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
# (zone, spring-forward day, fall-back day, a skipped reading, a repeated reading)
TRANSITIONS = [
    (BERLIN, datetime(2026, 3, 29), datetime(2026, 10, 25), "30 2", "30 2"),
    (NEW_YORK, datetime(2026, 3, 8), datetime(2026, 11, 1), "30 2", "30 1"),
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_day(zone: str, day: datetime) -> tuple[datetime, datetime]:
    """The UTC bounds of one local calendar day (23, 24 or 25 hours long)."""
    tz = ZoneInfo(zone)
    start = day.replace(tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def fires(cron: str, zone: str, day: datetime) -> list[datetime]:
    return due_times(ScheduleSpec(cron=cron, timezone=zone), *local_day(zone, day))


def readings(times: list[datetime], zone: str) -> list[str]:
    return [t.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z") for t in times]


# --- fixed times: kept to the local clock ----------------------------------------------------


def test_a_daily_0230_in_berlin_fires_once_at_0300_cest_on_the_spring_forward_day() -> None:
    assert fires("30 2 * * *", BERLIN, datetime(2026, 3, 29)) == [utc(2026, 3, 29, 1, 0)]


def test_a_daily_0230_in_new_york_fires_once_at_0300_edt_on_the_spring_forward_day() -> None:
    assert fires("30 2 * * *", NEW_YORK, datetime(2026, 3, 8)) == [utc(2026, 3, 8, 7, 0)]


def test_a_daily_0130_in_new_york_fires_once_at_the_first_0130_when_clocks_fall_back() -> None:
    assert fires("30 1 * * *", NEW_YORK, datetime(2026, 11, 1)) == [utc(2026, 11, 1, 5, 30)]


def test_a_daily_0230_in_berlin_fires_once_at_the_first_0230_when_clocks_fall_back() -> None:
    assert fires("30 2 * * *", BERLIN, datetime(2026, 10, 25)) == [utc(2026, 10, 25, 0, 30)]


@pytest.mark.parametrize(("zone", "spring", "fall", "skipped", "repeated"), TRANSITIONS)
def test_a_daily_job_fires_exactly_once_on_every_day_around_both_transitions(
    zone: str, spring: datetime, fall: datetime, skipped: str, repeated: str
) -> None:
    for transition, hour_minute in ((spring, skipped), (fall, repeated)):
        for offset in range(-3, 4):
            day = transition + timedelta(days=offset)
            assert len(fires(f"{hour_minute} * * *", zone, day)) == 1, day


def test_a_daily_0130_in_new_york_is_unaffected_by_the_spring_gap_it_precedes() -> None:
    assert readings(fires("30 1 * * *", NEW_YORK, datetime(2026, 3, 8)), NEW_YORK) == ["01:30 EST"]


def test_every_quarter_hour_of_the_skipped_hour_fires_once_together_after_the_gap() -> None:
    assert readings(fires("*/15 2 * * *", BERLIN, datetime(2026, 3, 29)), BERLIN) == ["03:00 CEST"]


def test_a_skipped_time_and_a_real_one_at_the_gap_end_fire_once_together() -> None:
    got = readings(fires("0,30 2,3 * * *", BERLIN, datetime(2026, 3, 29)), BERLIN)
    assert got == ["03:00 CEST", "03:30 CEST"]


def test_every_quarter_hour_of_the_repeated_hour_fires_only_at_its_first_occurrence() -> None:
    got = readings(fires("*/15 2 * * *", BERLIN, datetime(2026, 10, 25)), BERLIN)
    assert got == ["02:00 CEST", "02:15 CEST", "02:30 CEST", "02:45 CEST"]


def test_a_midnight_job_in_santiago_fires_at_0100_when_midnight_is_skipped() -> None:
    got = fires("0 0 * * *", "America/Santiago", datetime(2026, 9, 6))
    assert readings(got, "America/Santiago") == ["01:00 -03"] and got == [utc(2026, 9, 6, 4)]


def test_a_midnight_job_in_santiago_fires_once_when_the_evening_repeats() -> None:
    spec = ScheduleSpec(cron="30 23 * * *", timezone="America/Santiago")
    assert due_times(spec, utc(2026, 4, 4, 12), utc(2026, 4, 5, 12)) == [utc(2026, 4, 5, 2, 30)]


# --- every hour or finer: absolute time -------------------------------------------------------


@pytest.mark.parametrize(("zone", "spring", "fall", "skipped", "repeated"), TRANSITIONS)
def test_hourly_fires_every_absolute_hour_23_times_in_spring_and_25_in_autumn(
    zone: str, spring: datetime, fall: datetime, skipped: str, repeated: str
) -> None:
    for day, count in ((spring, 23), (fall, 25)):
        got = fires("0 * * * *", zone, day)
        assert len(got) == count
        assert {b - a for a, b in zip(got, got[1:], strict=False)} == {timedelta(hours=1)}


@pytest.mark.parametrize(("zone", "spring", "fall", "skipped", "repeated"), TRANSITIONS)
def test_every_15_minutes_never_doubles_or_skips_an_absolute_quarter_hour(
    zone: str, spring: datetime, fall: datetime, skipped: str, repeated: str
) -> None:
    for day, count in ((spring, 23 * 4), (fall, 25 * 4)):
        got = fires("*/15 * * * *", zone, day)
        assert len(got) == len(set(got)) == count
        assert {b - a for a, b in zip(got, got[1:], strict=False)} == {timedelta(minutes=15)}


def test_an_hourly_job_in_berlin_fires_at_0200_cest_and_again_at_0200_cet() -> None:
    got = readings(fires("0 * * * *", BERLIN, datetime(2026, 10, 25)), BERLIN)
    assert got[1:5] == ["01:00 CEST", "02:00 CEST", "02:00 CET", "03:00 CET"]


def test_an_hourly_job_in_new_york_skips_no_absolute_hour_at_the_spring_gap() -> None:
    got = readings(fires("0 * * * *", NEW_YORK, datetime(2026, 3, 8)), NEW_YORK)
    assert got[:4] == ["00:00 EST", "01:00 EST", "03:00 EDT", "04:00 EDT"]


def test_half_hourly_in_lord_howe_fires_every_absolute_half_hour_across_its_shifts() -> None:
    for day in (datetime(2026, 4, 5), datetime(2026, 10, 4)):
        got = fires("0,30 * * * *", "Australia/Lord_Howe", day)
        assert {b - a for a, b in zip(got, got[1:], strict=False)} == {timedelta(minutes=30)}


def test_an_interval_schedule_is_absolute_and_ignores_the_clock_change() -> None:
    spec = ScheduleSpec(interval_seconds=3600, timezone=BERLIN)
    got = due_times(spec, *local_day(BERLIN, datetime(2026, 10, 25)))
    assert len(got) == 25 and got[0] == utc(2026, 10, 24, 22)


def test_next_due_just_before_the_spring_gap_is_the_first_instant_after_it() -> None:
    spec = ScheduleSpec(cron="30 2 * * *", timezone=NEW_YORK, grace_seconds=0)
    assert next_due(spec, None, utc(2026, 3, 8, 6, 59)) == utc(2026, 3, 8, 7, 0)
    assert next_due(spec, utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 9, 6, 30)


def test_next_due_inside_the_repeated_hour_does_not_fire_the_second_0130_again() -> None:
    spec = ScheduleSpec(cron="30 1 * * *", timezone=NEW_YORK, grace_seconds=0)
    first = utc(2026, 11, 1, 5, 30)
    assert next_due(spec, first, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)


# --- against a minute-by-minute oracle ---------------------------------------------------------


def _matcher(cron: str):
    """A plain reading of the cron's fields (no L or #), independent of the code under test."""
    (minutes, hours, doms, months, dows), _ = croniter.expand(cron)

    def field(values: list, full: range) -> set[int]:
        return set(full) if "*" in values else {int(v) % 7 if full == range(7) else int(v)
                                                for v in values}

    mi, hr = field(minutes, range(60)), field(hours, range(24))
    dm, mo = field(doms, range(1, 32)), field(months, range(1, 13))
    dw = field(dows, range(7))
    both = "*" not in doms and "*" not in dows

    def matches(local: datetime) -> bool:
        day_ok = local.day in dm, (local.isoweekday() % 7) in dw
        day = any(day_ok) if both else all(day_ok)
        return local.minute in mi and local.hour in hr and local.month in mo and day

    return matches, hr == set(range(24))


def _oracle(cron: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Walk UTC minutes: a wall-clock job fires at first occurrences and at a gap's end for
    the readings it skipped; an every-hour job at every instant whose reading matches."""
    matches, every_hour = _matcher(cron)
    tz, out, minute = ZoneInfo(zone), [], timedelta(minutes=1)
    at = start
    while at < end:
        local = at.astimezone(tz)
        reading = local.replace(tzinfo=None)
        if every_hour:
            hit = matches(reading)
        else:
            hit = matches(reading) and local.fold == 0
            before = (at - minute).astimezone(tz).replace(tzinfo=None)
            skipped = before + minute
            while skipped < reading and not hit:  # the clock jumped over these readings
                hit = matches(skipped)
                skipped += minute
        if hit:
            out.append(at)
        at += minute
    return out


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, "America/Santiago", "Australia/Lord_Howe"])
@pytest.mark.parametrize("cron", [
    "30 2 * * *", "30 1 * * *", "0 0 * * *", "*/20 1-3 * * *", "15 * * * *", "*/10 * * * *",
    "0 2 * * 0", "45 1,2 1-7 * 0",
])
def test_due_times_equal_a_minute_by_minute_oracle_around_every_2026_transition(
    zone: str, cron: str
) -> None:
    tz, spec = ZoneInfo(zone), ScheduleSpec(cron=cron, timezone=zone)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    offset = at.astimezone(tz).utcoffset()
    while at.year == 2026:  # find the transitions by the half hour, check two days around each
        if at.astimezone(tz).utcoffset() != offset:
            offset = at.astimezone(tz).utcoffset()
            start, end = at - timedelta(hours=26), at + timedelta(hours=26)
            assert due_times(spec, start, end) == _oracle(cron, zone, start, end), at
        at += timedelta(minutes=30)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([BERLIN, NEW_YORK, "America/Santiago", "Australia/Lord_Howe",
                     "Pacific/Chatham", "Asia/Kolkata"]),
    st.sampled_from(["30 2 * * *", "0 * * * *", "*/25 * * * *", "10,40 0-2 * * *",
                     "0 0 * * 6,0", "*/5 23,0,1 * * *", "59 1 * 3,4,9,10,11 *"]),
    st.sampled_from([utc(2026, 3, 8, 7), utc(2026, 3, 29, 1), utc(2026, 4, 4, 15),
                     utc(2026, 4, 5, 3), utc(2026, 9, 6, 4), utc(2026, 9, 26, 14),
                     utc(2026, 10, 3, 15), utc(2026, 10, 25, 1), utc(2026, 11, 1, 6)]),
    st.integers(-2 * 86400, 86400),
    st.integers(60, 2 * 86400),
)
def test_due_times_equal_the_oracle_for_random_zones_crons_and_ranges(
    zone: str, cron: str, centre: datetime, shift: int, seconds: int
) -> None:
    after = centre + timedelta(seconds=shift, microseconds=shift % 7)
    until = after + timedelta(seconds=seconds)
    first_minute = after.replace(second=0, microsecond=0)
    if first_minute < after:
        first_minute += timedelta(minutes=1)
    assert due_times(ScheduleSpec(cron=cron, timezone=zone), after, until) == _oracle(
        cron, zone, first_minute, until)
