"""The Gantt timeline: attempts from step events (queued, running, ended, retried, timers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bend.web.timeline import attempts_of, place

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def ev(seconds: float, kind: str, step_id: str | None = None, **payload: Any) -> dict[str, Any]:
    return {"event_type": kind, "step_id": step_id, "occurred_at": T0 + timedelta(seconds=seconds),
            "payload": payload}


def test_an_attempt_is_queued_then_runs_then_ends() -> None:
    (a,) = attempts_of([ev(0, "RunStarted"), ev(1, "StepScheduled", "s", attempt=1),
                        ev(2, "StepStarted", "s", attempt=1),
                        ev(5, "StepSucceeded", "s", attempt=1)])
    assert (a.status, a.attempt) == ("succeeded", 1)
    assert (a.scheduled_at, a.started_at, a.ended_at) == (T0 + timedelta(seconds=1),
                                                         T0 + timedelta(seconds=2),
                                                         T0 + timedelta(seconds=5))
    row = place([a], T0, T0 + timedelta(seconds=10)).rows[0]
    queue, run = row.segments
    assert (queue.kind, run.kind) == ("queue", "run")
    assert queue.x + queue.w == run.x and run.w > queue.w


def test_a_failed_attempt_with_a_pending_retry_is_retrying_then_failed_once_retried() -> None:
    events = [ev(0, "StepScheduled", "s", attempt=1), ev(1, "StepStarted", "s", attempt=1),
              ev(2, "StepFailed", "s", attempt=1, message="boom"),
              ev(2, "StepRetryScheduled", "s", next_attempt=2,
                 retry_at=(T0 + timedelta(seconds=4)).isoformat(), delay_ms=2000)]
    (first,) = attempts_of(events)
    assert first.status == "retrying" and first.retry_at == T0 + timedelta(seconds=4)
    first, second = attempts_of([*events, ev(4, "StepScheduled", "s", attempt=2)])
    assert (first.status, second.status, second.attempt) == ("failed", "scheduled", 2)
    assert first.detail == "boom"
    kinds = [s.kind for s in place([first, second], T0, T0 + timedelta(seconds=5)).rows[0]
             .segments]
    assert kinds == ["queue", "run", "backoff"]


def test_a_delay_steps_timer_rides_on_its_attempt() -> None:
    events = [ev(0, "StepScheduled", "nap", attempt=1, node_type="delay"),
              ev(0, "TimerSet", "nap", timer_id="t1", purpose="delay",
                 fire_at=(T0 + timedelta(seconds=60)).isoformat())]
    (a,) = attempts_of(events)
    assert a.status == "scheduled" and a.timers[0].fired_at is None
    tl = place([a], T0, T0 + timedelta(seconds=10), width=1000)
    row = tl.rows[0]
    assert [s.kind for s in row.segments] == ["run", "timer"]
    # The axis runs on to the timer's due time; the attempt itself runs until now.
    assert row.marks == (1000 - 8,) and tl.now_x is not None and tl.now_x < row.marks[0]
    run, timer = row.segments
    assert abs(run.x + run.w - tl.now_x) < 0.01 and abs(timer.x + timer.w - row.marks[0]) < 0.01
    (a,) = attempts_of([*events, ev(60, "TimerFired", "nap", timer_id="t1", purpose="delay"),
                        ev(60, "StepSucceeded", "nap", attempt=1)])
    assert a.timers[0].fired_at == T0 + timedelta(seconds=60) and a.status == "succeeded"


def test_skipped_and_cancelled_steps_get_marks_and_cancel_ends_the_open_attempt() -> None:
    found = attempts_of([ev(0, "StepSkipped", "never", reason="branch not taken"),
                         ev(1, "StepScheduled", "busy", attempt=1),
                         ev(2, "StepStarted", "busy", attempt=1),
                         ev(3, "StepCancelled", "busy", reason="run cancelled"),
                         ev(3, "StepCancelled", "later", reason="run cancelled")])
    assert [(a.step_id, a.attempt, a.status) for a in found] == [
        ("never", 0, "skipped"), ("busy", 1, "cancelled"), ("later", 0, "cancelled")]
    rows = place(found, T0, T0 + timedelta(seconds=4)).rows
    assert [s.kind for s in rows[0].segments] == ["mark"]


def test_open_attempts_run_to_the_end_of_the_axis_and_ticks_cover_it() -> None:
    (a,) = attempts_of([ev(0, "StepScheduled", "s", attempt=1),
                        ev(1, "StepStarted", "s", attempt=1)])
    tl = place([a], T0, T0 + timedelta(seconds=30), width=1000)
    run = tl.rows[0].segments[-1]
    assert abs(run.x + run.w - (1000 - 8)) < 0.01
    assert tl.ticks[0][1] == "0 ms" and len(tl.ticks) >= 3
    assert tl.height > tl.axis_y


def test_a_step_timeout_timer_neither_draws_nor_stretches_the_axis() -> None:
    (a,) = attempts_of([ev(0, "StepScheduled", "s", attempt=1),
                        ev(0, "TimerSet", "s", timer_id="t", purpose="step_timeout",
                           fire_at=(T0 + timedelta(minutes=2)).isoformat()),
                        ev(1, "StepStarted", "s", attempt=1),
                        ev(2, "StepSucceeded", "s", attempt=1)])
    tl = place([a], T0, T0 + timedelta(seconds=3), width=1000)
    assert [s.kind for s in tl.rows[0].segments] == ["queue", "run"]
    assert tl.ticks[-1][1] == "3 s" and tl.now_x is None


def test_a_bars_label_keeps_a_loop_iterations_index_and_the_attempt() -> None:
    from bend.web.timeline import Attempt, short_label
    long_id = "step_with_a_quite_long_identifier"
    labels = {short_label(Attempt(f"{long_id}[{n}]", 1, "succeeded")) for n in range(40)}
    assert len(labels) == 40 and all(len(label) <= 24 for label in labels)
    assert short_label(Attempt(f"{long_id}[7]", 3, "failed")).endswith("[7] #3")
    assert short_label(Attempt("plan", 1, "succeeded")) == "plan"


def test_a_bar_is_described_by_step_attempt_status_and_duration() -> None:
    from bend.web.timeline import describe
    first, second = attempts_of([
        ev(0, "StepScheduled", "s", attempt=1), ev(1, "StepStarted", "s", attempt=1),
        ev(3.5, "StepFailed", "s", attempt=1, message="boom"),
        ev(4, "StepScheduled", "s", attempt=2), ev(4.2, "StepStarted", "s", attempt=2)])
    now = T0 + timedelta(seconds=10)
    assert describe(first, now) == "s, attempt 1: failed, queued 1.0 s, ran 2.5 s"
    assert describe(second, now) == "s, attempt 2: running, queued 200 ms, running for 5.8 s"
