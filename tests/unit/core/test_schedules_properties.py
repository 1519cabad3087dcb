"""Properties of due times over random schedules, zones, windows and ranges (hypothesis)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bend.core.triggers.schedules import ScheduleSpec, backfill, due_times, missed, next_due

UTC = timezone.utc
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe",
         "Asia/Kolkata", "Pacific/Chatham"]
CRONS = ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/15 * * * *", "*/7 * * * *", "0 0 * * *",
         "*/20 1-3 * * *", "0 9-17 * * 1-5", "45 23 * * 0", "0 12 1,15 * *", "0 3 L * *",
         "0 6 * * 1#2", "5 4 * * sun", "0 0,12 */2 * *", "*/5 2 * * *"]
# Around the 2026 transitions of the zones above, and a quiet stretch.
CENTRES = [datetime(2026, m, d, tzinfo=UTC) for m, d in
           [(3, 8), (3, 29), (4, 5), (4, 4), (9, 6), (9, 27), (10, 4), (10, 25), (11, 1), (7, 1)]]

windows = st.builds(
    dict,
    days=st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                  min_size=1, max_size=7, unique=True),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
).filter(lambda w: w["start"] != w["end"])


@st.composite
def specs(draw: st.DrawFn) -> ScheduleSpec:
    base: dict = {"timezone": draw(st.sampled_from(ZONES))}
    if draw(st.booleans()):
        base["cron"] = draw(st.sampled_from(CRONS))
    else:
        base["interval_seconds"] = draw(st.sampled_from([60, 300, 900, 3600, 5400, 86400]))
        if draw(st.booleans()):
            base["start_at"] = draw(st.sampled_from(CENTRES)) - timedelta(
                seconds=draw(st.integers(0, 86400)))
    if draw(st.booleans()):
        base["window"] = draw(windows)
    base["missed_policy"] = draw(st.sampled_from(["skip", "run_once", "catch_up"]))
    base["max_catch_up"] = draw(st.integers(1, 20))
    try:
        return ScheduleSpec(**base)
    except ValueError:  # a cron that never meets its window's hours is refused by design
        base.pop("window")
        return ScheduleSpec(**base)


@st.composite
def ranges(draw: st.DrawFn) -> tuple[datetime, datetime]:
    after = draw(st.sampled_from(CENTRES)) + timedelta(seconds=draw(st.integers(-2 * 86400, 86400)))
    hours = draw(st.sampled_from([0, 1, 6, 25, 49, 72]))
    return after, after + timedelta(hours=hours, seconds=draw(st.integers(0, 3600)))


def _inside(spec: ScheduleSpec, at: datetime) -> bool:
    return spec.window is None or spec.window.contains(
        at.astimezone(ZoneInfo(spec.timezone)).replace(tzinfo=None))


@settings(max_examples=100, deadline=None)
@given(specs(), ranges())
def test_due_times_are_increasing_unique_in_range_and_inside_the_window(
    spec: ScheduleSpec, span: tuple[datetime, datetime]
) -> None:
    after, until = span
    got = due_times(spec, after, until)
    assert all(a < b for a, b in zip(got, got[1:], strict=False))
    assert all(after <= t < until and t.tzinfo is UTC for t in got)
    assert all(_inside(spec, t) for t in got)


@settings(max_examples=60, deadline=None)
@given(specs(), ranges(), st.integers(0, 3 * 86400))
def test_due_times_of_a_range_are_those_of_its_two_halves(
    spec: ScheduleSpec, span: tuple[datetime, datetime], cut: int
) -> None:
    after, until = span
    middle = min(until, after + timedelta(seconds=cut))
    assert due_times(spec, after, until) == (
        due_times(spec, after, middle) + due_times(spec, middle, until))


@settings(max_examples=50, deadline=None)
@given(specs(), ranges())
def test_walking_next_due_visits_exactly_the_due_times(
    spec: ScheduleSpec, span: tuple[datetime, datetime]
) -> None:
    after, until = span
    expected = due_times(spec, after, until, limit=30)
    walked: list[datetime] = []
    last = None
    while len(walked) < len(expected):
        due = next_due(spec, last, after + spec.grace if last is None else last)
        assert due is not None
        walked.append(due)
        last = due
    assert walked == expected


@settings(max_examples=60, deadline=None)
@given(specs(), ranges())
def test_missed_never_exceeds_its_cap_and_accounts_for_every_missed_due_time(
    spec: ScheduleSpec, span: tuple[datetime, datetime]
) -> None:
    last_due, now = span
    got = missed(spec, last_due, now)
    every = due_times(spec, last_due + timedelta(microseconds=1), now - spec.grace)
    cap = {"skip": 0, "run_once": 1, "catch_up": spec.max_catch_up}[spec.missed_policy.value]
    assert len(got.due) <= cap
    assert list(got.due) == every[len(every) - len(got.due):]
    assert len(got.due) + got.dropped == len(every)


@settings(max_examples=30, deadline=None)
@given(specs(), ranges(), st.integers(1, 50))
def test_backfill_is_the_due_times_of_its_range_when_within_the_cap(
    spec: ScheduleSpec, span: tuple[datetime, datetime], cap: int
) -> None:
    start, end = span
    every = due_times(spec, start, end)
    if start < end and len(every) <= cap:
        assert backfill(spec, start, end, cap) == every


def test_window_membership_across_midnight_is_the_opening_days_evening_and_next_morning() -> None:
    spec = ScheduleSpec(interval_seconds=60, window={"days": ["sat"], "start": time(22),
                                                     "end": time(1)})
    assert spec.window is not None
    assert spec.window.contains(datetime(2026, 1, 3, 23, 0))  # Saturday evening
    assert spec.window.contains(datetime(2026, 1, 4, 0, 30))  # Sunday small hours
    assert not spec.window.contains(datetime(2026, 1, 4, 23, 0))  # Sunday evening


@settings(max_examples=60, deadline=None)
@given(specs(), ranges())
def test_a_window_drops_exactly_the_due_times_outside_it(
    spec: ScheduleSpec, span: tuple[datetime, datetime]
) -> None:
    unwindowed = spec.model_copy(update={"window": None})
    every = due_times(unwindowed, *span)
    assert due_times(spec, *span) == [t for t in every if _inside(spec, t)]
