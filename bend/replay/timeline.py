"""A run's history told from its events: each step's attempts, durations and LLM/tool calls."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bend.core.apply import apply
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, Event, StepCancelled, StepFailed,
    StepScheduled, StepSkipped, StepStarted, StepSucceeded, StepTimedOut,
)
from bend.core.state import RunState
from bend.core.timing import attempt_timing
from bend.core.transitions import STEP_ENDINGS, IllegalTransition
from bend.replay.errors import ReplayDiverged

__all__ = ["Attempt", "StepLine", "fold_events", "timeline"]



@dataclass(slots=True)
class Attempt:
    """One attempt of a step: when it was scheduled and ended, and the calls it made."""

    attempt: int
    scheduled_at: datetime
    outcome: str = "open"
    started_at: datetime | None = None  # as reported (late by report_started_after_ms)
    queued_ms: int | None = None  # scheduled -> began (bend.core.timing)
    duration_ms: int | None = None  # began -> ended: the run time
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0


@dataclass(slots=True)
class StepLine:
    """A step instance's attempts, in the order they were scheduled."""

    step_id: str
    node_type: str
    attempts: list[Attempt] = field(default_factory=list)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO text."""
        out = asdict(self)
        for a in out["attempts"]:
            a["scheduled_at"] = a["scheduled_at"].isoformat()
            if a["started_at"] is not None:
                a["started_at"] = a["started_at"].isoformat()
        return out


def fold_events(events: list[Event]) -> RunState:
    """The run's state after its events, in seq order; a repeated seq (a zombie's copy) is
    skipped."""
    state: RunState | None = None
    for event in events:
        if state is not None and event.seq <= state.seq:
            continue
        try:
            state = apply(state, event)
        except IllegalTransition as exc:
            raise ReplayDiverged(event.run_id or "?", event.seq, exc.message) from exc
    assert state is not None, "fold_events needs at least one event"
    return state


def timeline(events: list[Event]) -> list[StepLine]:
    """The steps of the run in the order they were first scheduled (or skipped)."""
    lines: dict[str, StepLine] = {}
    seen: set[int] = set()
    for ev in events:
        if ev.seq in seen:
            continue
        seen.add(ev.seq)
        match ev:
            case StepScheduled():
                line = lines.setdefault(ev.step_id, StepLine(ev.step_id, ev.node_type))
                line.attempts.append(Attempt(ev.attempt, ev.occurred_at))
            case StepSkipped():
                line = lines.setdefault(ev.step_id, StepLine(ev.step_id, ""))
                line.skipped = ev.reason or "skipped"
            case StepStarted():
                a = _attempt(lines, ev.step_id, ev.attempt)
                if a is not None and a.started_at is None:
                    a.started_at = ev.occurred_at
            case AgentLlmCallRecorded():
                a = _attempt(lines, ev.step_id, ev.attempt)
                if a is not None:
                    a.llm_calls += 1
                    a.prompt_tokens += ev.prompt_tokens
                    a.completion_tokens += ev.completion_tokens
            case AgentToolCallRecorded():
                a = _attempt(lines, ev.step_id, ev.attempt)
                if a is not None:
                    a.tool_calls += 1
            case StepSucceeded() | StepFailed() | StepTimedOut() | StepCancelled():
                a = _attempt(lines, ev.step_id, getattr(ev, "attempt", None))
                if a is not None and a.outcome == "open":
                    a.outcome = STEP_ENDINGS[ev.event_type].value
                    timing = attempt_timing(a.scheduled_at, a.started_at, ev.occurred_at,
                                            getattr(ev, "duration_ms", None))
                    a.queued_ms, a.duration_ms = timing.queued_ms, timing.run_ms
    return list(lines.values())


def _attempt(lines: dict[str, StepLine], step_id: str, attempt: int | None) -> Attempt | None:
    line = lines.get(step_id)
    if line is None or not line.attempts:
        return None
    if attempt is None:  # a cancellation ends whichever attempt is open
        return line.attempts[-1]
    return next((a for a in line.attempts if a.attempt == attempt), None)
