"""A synthetic, deterministic log for the projector's tests and bench: workflows, runs, steps,
retries, timers, LLM calls, triggers, dead letters and the commands that started them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from bend.core.commands import CancelRun, Command, StartRun
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, DeadLettered, Event, RunCancelled,
    RunCompleted, RunFailed, RunRequested, RunStarted, StepFailed, StepRetryScheduled,
    StepScheduled, StepSkipped, StepStarted, StepSucceeded, TimerFired, TimerSet, TriggerFired,
    WorkflowActivated, WorkflowPaused, WorkflowRegistered, WorkflowVersioned,
)

__all__ = ["BASE_TIME", "sample_history"]

BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
_NS = uuid.UUID("6f1c0b7e-2a8d-4c1e-9f3a-5b7d9e1f2a3c")


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(map(str, parts))))


def _definition(name: str, steps: int) -> dict:
    return {"name": name, "steps": [
        {"id": f"s{i}", "type": "agent" if i % 2 else "tool",
         "needs": [f"s{i - 1}"] if i else []} for i in range(steps)]}


def sample_history(workflows: int = 2, runs_per_workflow: int = 5, steps: int = 3,
                   tag: str = "h") -> list[Event | Command]:
    """Records in log order per key; run i fails every 5th, is cancelled every 7th, and every
    3rd run retries its first step once. Ids derive from `tag`, so two calls agree."""
    out: list[Event | Command] = []
    clock = [BASE_TIME]

    def at() -> datetime:
        clock[0] += timedelta(milliseconds=7)
        return clock[0]

    for w in range(workflows):
        wf = _id(tag, "wf", w)
        definition = _definition(f"workflow {w}", steps)
        out.append(WorkflowRegistered(event_id=_id(tag, wf, "reg"), workflow_id=wf,
                                      workflow_version=1, occurred_at=at(), name=f"workflow {w}",
                                      definition=definition, definition_hash=f"h{w}v1"))
        out.append(WorkflowVersioned(event_id=_id(tag, wf, "v2"), workflow_id=wf,
                                     workflow_version=2, occurred_at=at(),
                                     definition={**definition, "name": f"workflow {w} v2"},
                                     definition_hash=f"h{w}v2"))
        out.append(WorkflowPaused(event_id=_id(tag, wf, "pause"), workflow_id=wf,
                                  workflow_version=2, occurred_at=at(), actor="alice"))
        if w % 2 == 0:  # odd workflows stay paused
            out.append(WorkflowActivated(event_id=_id(tag, wf, "act"), workflow_id=wf,
                                         workflow_version=2, occurred_at=at(), actor="bob"))
        for r in range(runs_per_workflow):
            out.extend(_run(tag, wf, w * runs_per_workflow + r, definition, steps, at))
    out.append(DeadLettered(event_id=_id(tag, "dl"), workflow_id="", occurred_at=at(),
                            source_topic="bend.commands", source_partition=0, source_offset=3,
                            error_type="CorruptPayload", reason="bad magic", key=b"k",
                            payload=b"\x00\x01"))
    return out


def _run(tag: str, wf: str, i: int, definition: dict, steps: int,
         at: Callable[[], datetime]) -> list[Event | Command]:
    run = _id(tag, "run", i)
    env = {"run_id": run, "workflow_id": wf, "workflow_version": 2}
    seq = [0]

    def ev(cls: type, **fields: object) -> Event:
        seq[0] += 1
        return cls(event_id=_id(tag, run, seq[0]), seq=seq[0], occurred_at=at(), **env, **fields)

    trigger = _id(tag, "trigger", wf) if i % 4 == 0 else None
    out: list[Event | Command] = []
    if trigger:
        out.append(TriggerFired(event_id=_id(tag, run, "fired"), workflow_id=wf,
                                workflow_version=2, run_id=run, occurred_at=at(),
                                trigger_id=trigger, trigger_type="schedule",
                                dedupe_key=f"due-{i}", due_at=at(), input={"n": i}))
    out.append(StartRun(event_id=_id(tag, run, "start"), occurred_at=at(), **env,
                        input={"n": i}, definition=definition, idempotency_key=f"key-{i}",
                        trigger_id=trigger))
    out.append(ev(RunRequested, input={"n": i}, definition=definition,
                  idempotency_key=f"key-{i}", trigger_id=trigger))
    out.append(ev(RunStarted))
    cancelled = i % 7 == 6
    for s in range(steps):
        step = f"s{s}"
        if cancelled and s == steps - 1:
            out.append(CancelRun(event_id=_id(tag, run, "cancel"), occurred_at=at(), **env,
                                 reason="no longer needed", requested_by="carol"))
            out.append(ev(StepSkipped, step_id=step, reason="run cancelled"))
            out.append(ev(RunCancelled, reason="no longer needed", requested_by="carol"))
            return out
        attempts = 2 if (i % 3 == 0 and s == 0) else 1
        for attempt in range(1, attempts + 1):
            out.append(ev(StepScheduled, step_id=step, node_type="agent", attempt=attempt,
                          input={"step": s}, idempotency_key=f"{run}/{step}/{attempt}"))
            out.append(ev(StepStarted, step_id=step, attempt=attempt, worker_id="w1"))
            out.append(ev(AgentLlmCallRecorded, step_id=step, attempt=attempt, call_index=0,
                          model="gpt-test" if s % 2 else "small-test",
                          request={"messages": [{"role": "user", "content": "hi"}]},
                          response={"content": "hello"}, prompt_tokens=10 + s,
                          completion_tokens=5, latency_ms=40))
            out.append(ev(AgentToolCallRecorded, step_id=step, attempt=attempt, call_index=1,
                          tool_call_id=f"tc{s}", tool_name="web_search",
                          arguments={"q": "x"}, result={"hits": 1}))
            if attempt < attempts:
                out.append(ev(StepFailed, step_id=step, attempt=attempt, error_type="Timeout",
                              message="model timed out", retryable=True))
                timer = _id(tag, run, step, "retry")
                out.append(ev(StepRetryScheduled, step_id=step, next_attempt=attempt + 1,
                              retry_at=BASE_TIME, delay_ms=100))
                out.append(ev(TimerSet, timer_id=timer, purpose="retry", fire_at=BASE_TIME,
                              step_id=step))
                out.append(ev(TimerFired, timer_id=timer, purpose="retry", step_id=step))
        if i % 5 == 4 and s == steps - 1:
            out.append(ev(StepFailed, step_id=step, attempt=1, error_type="PermanentStepError",
                          message="bad input", retryable=False))
            out.append(ev(RunFailed, error_type="PermanentStepError", message="bad input",
                          step_id=step))
            return out
        out.append(ev(StepSucceeded, step_id=step, attempt=attempts, output={"step": s, "ok": 1},
                      duration_ms=12))
    out.append(ev(RunCompleted, output={"result": i}, duration_ms=100))
    return out
