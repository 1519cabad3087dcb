"""One definition of an attempt's queued and run time, whatever shows it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bend.core.timing import attempt_timing

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_an_executor_step_runs_for_the_duration_it_measured_and_waited_before() -> None:
    # Scheduled at 0, reported started at 9,233 (200 ms after it began), ended at 9,675,
    # the executor measured 642 ms: it began at 9,033.
    t = attempt_timing(at(0), at(9_233), at(9_675), 642)
    assert (t.began_at, t.queued_ms, t.run_ms) == (at(9_033), 9_033, 642)


def test_a_quick_step_never_reported_started_still_has_its_queue_and_run_time() -> None:
    t = attempt_timing(at(0), None, at(40), 10)
    assert (t.queued_ms, t.run_ms) == (30, 10)


def test_a_step_the_engine_runs_itself_was_never_queued() -> None:
    t = attempt_timing(at(0), None, at(2_000), 0)  # a 2 s delay
    assert (t.began_at, t.queued_ms, t.run_ms) == (at(0), 0, 2_000)


def test_a_running_step_has_run_until_now_and_a_waiting_one_not_at_all() -> None:
    assert attempt_timing(at(0), at(100), now=at(400)).run_ms == 300
    t = attempt_timing(at(0), now=at(400))
    assert (t.began_at, t.queued_ms, t.run_ms) == (None, None, None)


def test_skewed_clocks_never_give_a_negative_queue() -> None:
    t = attempt_timing(at(100), None, at(150), 500)
    assert t.queued_ms == 0 and t.run_ms == 500
