"""Schedules: validation messages, intervals, windows, next due, missed runs, backfill, keys."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bend.core.triggers.errors import (
    BackfillTooLarge, InvalidTimeRange, InvalidTrigger, NaiveDatetime,
)
from bend.core.triggers.schedules import (
    MissedPolicy, ScheduleSpec, backfill, dedupe_key, due_times, missed, next_due,
)
from bend.core.triggers import parse_schedule

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def problems(**data: object) -> str:
    with pytest.raises(InvalidTrigger) as caught:
        parse_schedule(data)
    return " | ".join(caught.value.problems)


# --- validation ----------------------------------------------------------------------------


def test_a_bad_cron_field_is_refused_naming_the_field_and_its_range() -> None:
    assert "cron field 2 (hour) '24' is not valid; use 0-23" in problems(cron="0 24 * * *")


def test_every_bad_cron_field_is_listed() -> None:
    got = problems(cron="61 * 32 13 *")
    assert all(f"({name})" in got for name in ("minute", "day-of-month", "month"))


def test_a_cron_with_six_fields_is_refused_with_the_five_it_needs() -> None:
    assert "has 6 fields; give exactly 5" in problems(cron="0 0 * * * *")


def test_a_cron_that_matches_no_day_is_refused() -> None:
    assert "matches no calendar day" in problems(cron="0 0 30 2 *")


def test_an_unknown_macro_is_refused_and_a_known_one_is_expanded() -> None:
    assert "@reboot" in problems(cron="@reboot")
    assert ScheduleSpec(cron="@Daily").cron == "0 0 * * *"


def test_an_unknown_time_zone_is_refused_with_close_names() -> None:
    got = problems(cron="0 9 * * *", timezone="Europe/Berln")
    assert "unknown time zone 'Europe/Berln'; did you mean 'Europe/Berlin'" in got


def test_a_time_zone_in_the_wrong_case_suggests_its_right_spelling() -> None:
    got = problems(cron="0 9 * * *", timezone="america/new_york")
    assert "did you mean 'America/New_York'" in got


def test_the_host_dependent_localtime_zone_is_refused() -> None:
    assert "unknown time zone 'localtime'" in problems(interval_seconds=60, timezone="localtime")


def test_a_window_whose_start_equals_its_end_is_refused() -> None:
    got = problems(cron="0 9 * * *", window={"start": "09:00", "end": "09:00"})
    assert "window start and end are both 09:00" in got


def test_a_window_without_days_is_refused() -> None:
    assert "the window has no days" in problems(
        cron="0 9 * * *", window={"days": [], "start": "09:00", "end": "17:00"})


def test_a_cron_that_never_fires_inside_its_window_is_refused() -> None:
    got = problems(cron="0 9 * * *", window={"start": "10:00", "end": "12:00"})
    assert "never fires between the window's 10:00 and 12:00" in got


def test_cron_and_interval_together_or_neither_are_refused() -> None:
    assert "exactly one of cron" in problems(cron="0 9 * * *", interval_seconds=60)
    assert "exactly one of cron" in problems(timezone="UTC")


def test_a_start_after_the_end_is_refused() -> None:
    got = problems(interval_seconds=60, start_at="2026-02-01T00:00:00Z",
                   end_at="2026-01-01T00:00:00Z")
    assert "is not before end_at" in got


def test_several_problems_are_all_reported_at_once() -> None:
    got = problems(cron="61 * * * *", timezone="Mars/Olympus",
                   window={"start": "09:00", "end": "09:00"})
    assert "(minute)" in got and "Mars/Olympus" in got and "both 09:00" in got


def test_naive_start_at_and_unknown_fields_are_refused() -> None:
    assert "start_at" in problems(interval_seconds=60, start_at="2026-01-01T00:00:00")
    assert "every" in problems(every=60)


def test_window_days_accept_names_in_any_case_and_are_kept_in_week_order() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", window={"days": ["Friday", "MON"], "start": "08:00",
                                                  "end": "10:00"})
    assert spec.window is not None and spec.window.days == ("mon", "fri")


# --- intervals and windows -------------------------------------------------------------------


def test_an_interval_without_start_at_is_aligned_to_the_unix_epoch() -> None:
    spec = ScheduleSpec(interval_seconds=900)
    assert due_times(spec, utc(2026, 1, 1, 0, 7), utc(2026, 1, 1, 0, 50)) == [
        utc(2026, 1, 1, 0, 15), utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 0, 45)]


def test_an_interval_counts_from_start_at_and_stops_before_end_at() -> None:
    spec = ScheduleSpec(interval_seconds=600, start_at=utc(2026, 1, 1, 0, 3),
                        end_at=utc(2026, 1, 1, 0, 33))
    assert due_times(spec, utc(2025, 1, 1), utc(2027, 1, 1)) == [
        utc(2026, 1, 1, 0, 3), utc(2026, 1, 1, 0, 13), utc(2026, 1, 1, 0, 23)]


def test_a_window_keeps_only_due_times_on_its_days_between_its_hours() -> None:
    spec = ScheduleSpec(cron="0 * * * *", timezone="Europe/Berlin",
                        window={"days": ["mon", "tue"], "start": "09:00", "end": "11:00"})
    got = due_times(spec, utc(2026, 1, 3), utc(2026, 1, 8))  # Saturday to Wednesday
    local = [t.astimezone(BERLIN).strftime("%a %H:%M") for t in got]
    assert local == ["Mon 09:00", "Mon 10:00", "Tue 09:00", "Tue 10:00"]


def test_a_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    spec = ScheduleSpec(interval_seconds=3600, window={"days": ["fri"], "start": "23:00",
                                                      "end": "02:00"})
    got = due_times(spec, utc(2026, 1, 1), utc(2026, 1, 12))  # 2 and 9 Jan are Fridays
    assert [t.strftime("%a %H") for t in got] == ["Fri 23", "Sat 00", "Sat 01"] * 2


def test_a_window_on_the_repeated_hour_keeps_both_occurrences_of_an_every_hour_job() -> None:
    spec = ScheduleSpec(cron="*/30 * * * *", timezone="America/New_York",
                        window={"start": "01:00", "end": "02:00"})
    got = due_times(spec, utc(2026, 11, 1), utc(2026, 11, 2))
    assert got == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6),
                   utc(2026, 11, 1, 6, 30)]


def test_a_window_opening_inside_the_spring_gap_opens_at_the_gap_end() -> None:
    spec = ScheduleSpec(cron="*/30 * * * *", timezone="Europe/Berlin",
                        window={"start": "02:30", "end": "04:00"})
    got = due_times(spec, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert [t.astimezone(BERLIN).strftime("%H:%M") for t in got] == ["03:00", "03:30"]


def test_a_dense_schedule_with_a_narrow_window_is_found_quickly_far_ahead() -> None:
    spec = ScheduleSpec(cron="* * * * *", window={"days": ["sun"], "start": time(3),
                                                   "end": time(3, 2)})
    assert next_due(spec, None, utc(2026, 1, 5)) == utc(2026, 1, 11, 3, 0)


# --- next_due --------------------------------------------------------------------------------


def test_next_due_is_the_first_due_time_after_the_last_one() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", timezone="Europe/Berlin")
    assert next_due(spec, utc(2026, 1, 5, 8), utc(2026, 1, 5, 8)) == utc(2026, 1, 6, 8)


def test_next_due_returns_a_due_time_passed_within_the_grace_so_it_fires_late_not_never() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", grace_seconds=60)
    assert next_due(spec, utc(2026, 1, 4, 9), utc(2026, 1, 5, 9, 0, 30)) == utc(2026, 1, 5, 9)
    assert next_due(spec, utc(2026, 1, 4, 9), utc(2026, 1, 5, 9, 1, 1)) == utc(2026, 1, 6, 9)


def test_a_paused_schedule_has_no_next_due_and_misses_nothing() -> None:
    spec = ScheduleSpec(cron="* * * * *", paused=True, missed_policy="catch_up")
    assert next_due(spec, None, utc(2026, 1, 1)) is None
    assert missed(spec, utc(2026, 1, 1), utc(2026, 1, 2)).due == ()


def test_a_finished_schedule_has_no_next_due() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", end_at=utc(2026, 1, 1))
    assert next_due(spec, None, utc(2026, 6, 1)) is None


def test_a_cron_that_cannot_meet_its_window_days_has_no_next_due_within_the_horizon() -> None:
    spec = ScheduleSpec(cron="0 9 * * 1", window={"days": ["tue"], "start": "08:00",
                                                  "end": "10:00"})
    assert next_due(spec, None, utc(2026, 1, 1)) is None


# --- missed runs after an outage ----------------------------------------------------------------

DOWN_FROM, BACK_AT = utc(2026, 1, 5, 9, 30), utc(2026, 1, 5, 15, 10)  # 10:00..15:00 missed


def hourly(policy: str, cap: int = 10) -> ScheduleSpec:
    return ScheduleSpec(cron="0 * * * *", missed_policy=policy, max_catch_up=cap)


def test_skip_fires_none_of_the_missed_runs_and_reports_them_dropped() -> None:
    got = missed(hourly("skip"), utc(2026, 1, 5, 9), BACK_AT)
    assert got.policy is MissedPolicy.SKIP and got.due == () and got.dropped == 6


def test_run_once_fires_only_the_latest_missed_run() -> None:
    got = missed(hourly("run_once"), utc(2026, 1, 5, 9), BACK_AT)
    assert got.due == (utc(2026, 1, 5, 15),) and got.dropped == 5


def test_catch_up_fires_every_missed_run_oldest_first() -> None:
    got = missed(hourly("catch_up"), utc(2026, 1, 5, 9), BACK_AT)
    assert got.due == tuple(utc(2026, 1, 5, h) for h in range(10, 16)) and got.dropped == 0


def test_catch_up_keeps_the_latest_runs_up_to_the_cap_and_drops_the_oldest() -> None:
    got = missed(hourly("catch_up", cap=4), utc(2026, 1, 5, 9), BACK_AT)
    assert got.due == tuple(utc(2026, 1, 5, h) for h in range(12, 16)) and got.dropped == 2


def test_a_run_within_the_grace_is_not_missed_but_next_due() -> None:
    spec = hourly("catch_up")
    now = utc(2026, 1, 5, 15, 0, 30)
    assert utc(2026, 1, 5, 15) not in missed(spec, utc(2026, 1, 5, 9), now).due
    assert next_due(spec, utc(2026, 1, 5, 9), now) == utc(2026, 1, 5, 15)


def test_a_trigger_that_never_fired_has_missed_nothing() -> None:
    assert missed(hourly("catch_up"), None, BACK_AT).due == ()


def test_a_long_outage_of_a_dense_interval_is_counted_without_walking_it() -> None:
    spec = ScheduleSpec(interval_seconds=1, missed_policy="catch_up", max_catch_up=3)
    got = missed(spec, utc(2026, 1, 1), utc(2027, 1, 1))
    assert got.due == (utc(2026, 12, 31, 23, 58, 57), utc(2026, 12, 31, 23, 58, 58),
                       utc(2026, 12, 31, 23, 58, 59))
    assert got.dropped + 3 == 365 * 86400 - 60 - 1


def test_missed_runs_of_a_windowed_interval_are_walked_and_counted() -> None:
    spec = ScheduleSpec(interval_seconds=3600, missed_policy="run_once",
                        window={"start": "09:00", "end": "12:00"})
    got = missed(spec, utc(2026, 1, 1), utc(2026, 1, 4))
    assert got.due == (utc(2026, 1, 3, 11),) and got.dropped == 3 * 3 - 1


# --- backfill and dedupe keys -----------------------------------------------------------------


def test_backfill_lists_the_due_times_of_a_past_range_oldest_first() -> None:
    spec = ScheduleSpec(cron="0 6 * * *", timezone="Europe/Berlin")
    got = backfill(spec, utc(2026, 1, 1), utc(2026, 1, 4), cap=10, now=utc(2026, 2, 1))
    assert got == [utc(2026, 1, 1, 5), utc(2026, 1, 2, 5), utc(2026, 1, 3, 5)]


def test_backfill_of_a_paused_schedule_still_lists_its_due_times() -> None:
    spec = ScheduleSpec(cron="0 6 * * *", paused=True)
    assert backfill(spec, utc(2026, 1, 1), utc(2026, 1, 2), cap=1) == [utc(2026, 1, 1, 6)]


def test_backfill_over_the_cap_is_refused_saying_to_narrow_the_range() -> None:
    spec = ScheduleSpec(cron="*/5 * * * *")
    with pytest.raises(BackfillTooLarge, match="more than 11 due times; narrow the range"):
        backfill(spec, utc(2026, 1, 1), utc(2026, 1, 1, 1), cap=11)
    assert len(backfill(spec, utc(2026, 1, 1), utc(2026, 1, 1, 1), cap=12)) == 12


def test_backfill_of_a_reversed_or_future_range_is_refused() -> None:
    spec = ScheduleSpec(cron="0 6 * * *")
    with pytest.raises(InvalidTimeRange, match="not before its end"):
        backfill(spec, utc(2026, 1, 2), utc(2026, 1, 1), cap=5)
    with pytest.raises(InvalidTimeRange, match="in the future"):
        backfill(spec, utc(2026, 1, 1), utc(2026, 1, 9), cap=5, now=utc(2026, 1, 5))


def test_naive_times_are_refused_saying_how_to_give_a_zone() -> None:
    spec = ScheduleSpec(cron="0 6 * * *")
    with pytest.raises(NaiveDatetime, match="has no time zone"):
        due_times(spec, datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(NaiveDatetime):
        dedupe_key("t1", datetime(2026, 1, 1))


def test_the_dedupe_key_is_the_trigger_and_the_due_time_in_utc_whatever_its_zone() -> None:
    berlin = datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert dedupe_key("nightly", berlin) == "nightly@2026-03-29T01:00:00Z"
    assert dedupe_key("nightly", berlin) == dedupe_key("nightly", utc(2026, 3, 29, 1))
    assert dedupe_key("t", utc(2026, 1, 1, 0, 0, 0, 5)) == "t@2026-01-01T00:00:00.000005Z"


def test_due_times_can_be_limited_and_come_back_in_utc() -> None:
    spec = ScheduleSpec(cron="0 9 * * *", timezone="Asia/Kolkata")
    got = due_times(spec, utc(2026, 1, 1), utc(2027, 1, 1), limit=2)
    assert got == [utc(2026, 1, 1, 3, 30), utc(2026, 1, 2, 3, 30)]
    assert all(t.tzinfo is UTC for t in got)
    assert due_times(spec, utc(2026, 1, 1) + timedelta(days=1), utc(2026, 1, 1)) == []


def test_times_at_the_ends_of_the_calendar_are_refused_not_overflowed() -> None:
    spec = ScheduleSpec(cron="0 0 * * *", timezone="America/New_York")
    with pytest.raises(InvalidTimeRange, match="outside the years 2-9998"):
        due_times(spec, datetime(1, 1, 1, tzinfo=UTC), utc(2026, 1, 1))
    assert next_due(spec, None, datetime(9998, 12, 30, tzinfo=UTC)) == datetime(
        9998, 12, 30, 5, tzinfo=UTC)
