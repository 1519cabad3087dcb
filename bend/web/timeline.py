"""A run's Gantt timeline from its events: one bar per step attempt, placed on a time axis.

Pure: event rows in (as the read models store them: `event_type`, `step_id`, `occurred_at`,
`payload`), bars out. An attempt is queued from StepScheduled to StepStarted and runs until it
ends; a retry's back-off follows the failed attempt until its `retry_at`; durable timers (a
delay step's wait, a retry timer) ride on the attempt that set them. Statuses are the API's step
statuses, so the newest attempt of a step shows what `GET /api/executions/{id}` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bend.core.timing import attempt_timing
from bend.core.transitions import STEP_ENDINGS

__all__ = ["Attempt", "Timer", "TimelineLayout", "attempts_of", "describe", "place", "short_label"]

_ENDS = {name: status.value for name, status in STEP_ENDINGS.items()}
_OPEN = ("scheduled", "running", "retrying")
# Timers a step waits on (drawn); a step's timeout timer is a deadline, told in the bar's title.
_WAITS = ("delay", "retry")


@dataclass(slots=True)
class Timer:
    """A durable timer set during an attempt: set, due, and fired (None while pending)."""

    timer_id: str
    purpose: str
    set_at: datetime
    fire_at: datetime
    fired_at: datetime | None = None


@dataclass(slots=True)
class Attempt:
    """One attempt of a step (attempt 0: a step skipped or cancelled before it was scheduled)."""

    step_id: str
    attempt: int
    status: str
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    retry_at: datetime | None = None
    node_type: str = ""
    detail: str = ""
    timers: list[Timer] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """Not finished yet."""
        return self.status in _OPEN


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def attempts_of(events: Iterable[Mapping[str, Any]]) -> list[Attempt]:
    """Every step attempt of the run, in the order they were scheduled."""
    found: list[Attempt] = []
    latest: dict[str, Attempt] = {}
    timers: dict[str, Timer] = {}
    current: Attempt | None
    timer: Timer | None
    for row in events:
        kind, step_id, at = row["event_type"], row.get("step_id"), row["occurred_at"]
        body: Mapping[str, Any] = row.get("payload") or {}
        if kind == "StepScheduled" and step_id:
            previous = latest.get(step_id)
            if previous is not None and previous.status == "retrying":
                previous.status = "failed"
            latest[step_id] = Attempt(step_id, int(body.get("attempt", 1)), "scheduled",
                                      scheduled_at=at, node_type=str(body.get("node_type", "")))
            found.append(latest[step_id])
        elif kind == "StepStarted" and step_id in latest:
            current = latest[step_id]
            if current.status == "scheduled":
                current.status, current.started_at = "running", at
        elif kind in _ENDS and step_id:
            current = latest.get(step_id)
            if current is None or not current.open:
                # Skipped or cancelled before it was ever scheduled: a mark, not a bar.
                current = Attempt(step_id, 0, _ENDS[kind], scheduled_at=at)
                latest[step_id] = current
                found.append(current)
            current.status, current.ended_at = _ENDS[kind], at
            current.detail = str(body.get("message") or body.get("reason") or "")
            # An executor's step began when its measured run time says, not when its late
            # "started" report came (bend.core.timing: the CLI, API and replay agree).
            measured = body.get("duration_ms")
            if isinstance(measured, int) and measured > 0 and current.scheduled_at:
                current.started_at = attempt_timing(current.scheduled_at, current.started_at,
                                                    at, measured).began_at
        elif kind == "StepRetryScheduled" and step_id in latest:
            current = latest[step_id]
            current.status = "retrying"
            current.retry_at = _time(body.get("retry_at"))
        elif kind == "StepSkipped" and step_id:
            mark = Attempt(step_id, 0, "skipped", scheduled_at=at, ended_at=at,
                           detail=str(body.get("reason", "")))
            latest[step_id] = mark
            found.append(mark)
        elif kind == "TimerSet":
            fire_at = _time(body.get("fire_at")) or at
            timer = Timer(str(body.get("timer_id", "")), str(body.get("purpose", "")), at,
                          fire_at)
            timers[timer.timer_id] = timer
            if step_id in latest:
                latest[step_id].timers.append(timer)
        elif kind == "TimerFired":
            timer = timers.get(str(body.get("timer_id", "")))
            if timer is not None:
                timer.fired_at = at
    return found


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a bar: `kind` is queue, run, backoff or timer."""

    kind: str
    x: float
    w: float


@dataclass(frozen=True, slots=True)
class Row:
    """One attempt on the axis: `label` is what its bar shows, `name` what a screen reader says."""

    attempt: Attempt
    y: float
    segments: tuple[Segment, ...]
    marks: tuple[float, ...]  # timer due times
    label: str = ""
    name: str = ""


LABEL_CHARS = 24


def human_ms(ms: float) -> str:
    """`ms` for people: 850 ms, 1.2 s, 3 min 5 s (the pages' `duration` filter too)."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _ms(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds() * 1000, 0.0)


def short_label(a: Attempt, chars: int = LABEL_CHARS) -> str:
    """A bar's label: the step id, cut in the middle so a loop iteration's `[n]` stays, and
    `#attempt` from the second attempt on."""
    text, tail = a.step_id, f" #{a.attempt}" if a.attempt > 1 else ""
    room = chars - len(tail)
    if len(text) > room:
        keep = text[text.rfind("["):] if text.endswith("]") and "[" in text else text[-5:]
        keep = keep[-max(room // 2, 4):]
        text = text[:max(room - len(keep) - 1, 1)] + "…" + keep
    return text + tail


def describe(a: Attempt, now: datetime) -> str:
    """What a bar tells a screen reader: step, attempt, status and how long it took (or has
    taken so far)."""
    status = a.status.replace("_", " ")
    if a.attempt == 0:
        return f"{a.step_id}: {status}" + (f", {a.detail}" if a.detail else "")
    parts = [f"{a.step_id}, attempt {a.attempt}: {status}"]
    if a.scheduled_at and a.started_at:
        parts.append(f"queued {human_ms(_ms(a.scheduled_at, a.started_at))}")
    if a.started_at and a.ended_at:
        parts.append(f"ran {human_ms(_ms(a.started_at, a.ended_at))}")
    elif a.started_at:
        parts.append(f"running for {human_ms(_ms(a.started_at, now))}")
    elif a.scheduled_at and a.ended_at:
        parts.append(f"took {human_ms(_ms(a.scheduled_at, a.ended_at))}")
    elif a.scheduled_at:
        parts.append(f"waiting for {human_ms(_ms(a.scheduled_at, now))}")
    if a.retry_at is not None and a.open:
        parts.append(f"retry in {human_ms(_ms(now, a.retry_at))}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class TimelineLayout:
    """Rows of bars, tick marks (x, label) and the drawing's size."""

    rows: tuple[Row, ...]
    ticks: tuple[tuple[float, str], ...]
    width: float
    height: float
    label_w: float
    row_h: float
    axis_y: float
    now_x: float | None = None  # where "now" is, when the axis runs past it
    foot: bool = False  # the axis's labels repeated below the bars (a tall timeline)


LABEL_W = 200.0
ROW_H = 26.0
AXIS_H = 24.0
_MIN_W = 2.0
FOOT_ROWS = 12  # past this many rows the axis is labelled below the bars too
FOOT_H = 16.0


def _tick_step(span_ms: float) -> float:
    for step in (10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
                 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000,
                 21_600_000, 43_200_000, 86_400_000):
        if span_ms / step <= 8:
            return float(step)
    return 86_400_000.0 * max(1.0, span_ms / 86_400_000.0 / 8)


def _label(ms: float) -> str:
    if ms < 1_000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:g} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:g} min"
    return f"{ms / 3_600_000:g} h"


def place(attempts: Sequence[Attempt], start: datetime, now: datetime,
          width: float = 1200.0) -> TimelineLayout:
    """Bars of `attempts` on an axis from `start` to `now` (a finished run: its end), or on to
    the latest pending timer or retry, so what the run waits for shows; open attempts run
    to `now`."""
    end = max([now, *(t.fire_at for a in attempts if a.open for t in a.timers
                      if t.fired_at is None and t.purpose in _WAITS),
               *(a.retry_at for a in attempts if a.status == "retrying" and a.retry_at)])
    span_ms = max((end - start).total_seconds() * 1000, 1.0)
    plot_w = width - LABEL_W - 8

    def x(at: datetime | None) -> float:
        at = at or end
        ms = min(max((at - start).total_seconds() * 1000, 0.0), span_ms)
        return LABEL_W + ms / span_ms * plot_w

    rows = []
    for k, a in enumerate(attempts):
        y = AXIS_H + k * ROW_H
        segs: list[Segment] = []
        begin = x(a.scheduled_at)
        run_from = x(a.started_at) if a.started_at else None
        finish = x(a.ended_at) if a.ended_at else x(now)
        if a.attempt == 0:
            segs.append(Segment("mark", begin, _MIN_W))
        elif run_from is None:
            # Never taken by a worker (engine-run steps, or still queued).
            kind = "queue" if a.status == "scheduled" and not a.timers else "run"
            segs.append(Segment(kind, begin, max(finish - begin, _MIN_W)))
        else:
            segs.append(Segment("queue", begin, max(run_from - begin, 0.0)))
            segs.append(Segment("run", run_from, max(finish - run_from, _MIN_W)))
        if a.retry_at is not None and a.ended_at is not None:
            back_to = x(a.retry_at)
            segs.append(Segment("backoff", finish, max(back_to - finish, _MIN_W)))
        waits = [t for t in a.timers if t.purpose in _WAITS]
        for t in waits:
            # A timer the attempt outlived (it ended first) stops with it.
            due = t.fired_at or (t.fire_at if a.open else min(t.fire_at, a.ended_at or now))
            segs.append(Segment("timer", x(t.set_at), max(x(due) - x(t.set_at), _MIN_W)))
        marks = tuple(x(t.fire_at) for t in waits if t.fire_at <= end and
                      (a.open or t.fired_at is not None))
        rows.append(Row(a, y, tuple(s for s in segs if s.w > 0), marks, short_label(a),
                        describe(a, now)))
    step = _tick_step(span_ms)
    ticks, ms = [], 0.0
    while ms <= span_ms + 1e-6:
        ticks.append((LABEL_W + ms / span_ms * plot_w, _label(ms)))
        ms += step
    foot = len(rows) > FOOT_ROWS
    height = AXIS_H + len(rows) * ROW_H + 8 + (FOOT_H if foot else 0.0)
    return TimelineLayout(tuple(rows), tuple(ticks), width, height, LABEL_W, ROW_H, AXIS_H,
                          x(now) if now < end else None, foot)
