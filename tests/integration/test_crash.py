"""kill -9 of the orchestrator and of an executor in the middle of runs loses no run, and runs
waiting on approvals and signals across it lose no decision, no kept signal and no timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timezone

import pytest

from bend.core.commands import DecideApproval, SignalRun, StartRun
from bend.core.events import (
    ApprovalDecided, RunCompleted, SignalDelivered, SignalReceived, StepScheduled, StepSucceeded,
)
from bend.devstack.engine import running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher

pytestmark = pytest.mark.integration

RUNS = 30
WORKFLOW = {
    "name": "crashy",
    "defaults": {"retry": {"max_attempts": 3, "initial_interval": "200ms", "backoff": 2}},
    "steps": [
        {"id": "a", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}},
        {"id": "b", "type": "tool", "component": "flaky@1", "inputs": {"fail_attempts": "${`1`}"},
         "after": ["a"]},
        {"id": "nap", "type": "delay", "duration": "1s", "after": ["b"]},
        {"id": "c", "type": "tool", "component": "noop@1", "inputs": {"n": "3"}, "after": ["nap"]},
        {"id": "d", "type": "tool", "component": "noop@1", "inputs": {"n": "4"}, "after": ["c"]},
        {"id": "e", "type": "transform", "expression": "steps.d.output", "after": ["d"]},
    ],
}
STEPS = {"a", "b", "nap", "c", "d", "e"}


async def _wait_for_successes(watcher: RunWatcher, count: int) -> None:
    seen = 0
    async for event in watcher.stream():
        if isinstance(event, StepSucceeded):
            seen += 1
            if seen >= count:
                return


async def test_killing_the_orchestrator_and_an_executor_mid_run_loses_no_run(
        kafka_bootstrap: str) -> None:
    with running_engine() as engine:
        starts = [engine.start_run(WORKFLOW, {}) for _ in range(RUNS)]
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(starts)
            await asyncio.wait_for(_wait_for_successes(watcher, RUNS), timeout=60)
            orchestrator = next(p for p in engine.workers.processes if p.role == "orchestrator")
            orchestrator.kill()
            engine.workers.start("orchestrator", wait=False)
            await asyncio.wait_for(_wait_for_successes(watcher, RUNS // 2), timeout=90)
            executor = next(p for p in engine.workers.processes
                            if p.role == "executor" and p.alive())
            executor.kill()
            engine.workers.start("executor", wait=False)
            done = await watcher.wait_finished([s.run_id for s in starts], timeout_s=150)
    assert all(isinstance(e, RunCompleted) for e in done.values()), \
        Counter(type(e).__name__ for e in done.values())
    for start in starts:
        events = watcher.events[start.run_id]
        succeeded = Counter(e.step_id for e in events if isinstance(e, StepSucceeded))
        assert set(succeeded) == STEPS and max(succeeded.values()) == 1, succeeded
        seqs = sorted(e.seq for e in events)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a duplicate"


GATED = {
    "name": "gated_crash",
    "steps": [
        {"id": "ok", "type": "approval"},
        {"id": "auto", "type": "approval", "timeout": "4s", "on_timeout": "approve"},
        {"id": "w", "type": "wait", "signal": "go", "after": ["ok"]},
        {"id": "e", "type": "transform", "expression": "steps.w.output", "after": ["w", "auto"]},
    ],
}


def _command(cls: type, start: StartRun, **fields: object) -> object:
    return cls(event_id=str(uuid.uuid4()), run_id=start.run_id, workflow_id=start.workflow_id,
               occurred_at=datetime.now(timezone.utc), correlation_id=start.run_id, **fields)


async def _wait_for_waiting(watcher: RunWatcher, count: int) -> None:
    seen = 0
    async for event in watcher.stream():
        if isinstance(event, StepScheduled) and event.step_id == "ok":
            seen += 1
            if seen >= count:
                return


async def test_runs_waiting_on_approvals_and_signals_survive_killing_the_orchestrator(
        kafka_bootstrap: str) -> None:
    runs = 10
    with running_engine(executors=0) as engine:
        starts = [engine.start_run(GATED, {}) for _ in range(runs)]
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(starts)
            await asyncio.wait_for(_wait_for_waiting(watcher, runs), timeout=60)
            # Sent before any run waits for it: kept in the run's state, across the crash.
            await producer.send_many([_command(SignalRun, s, name="go", payload={"n": i})
                                      for i, s in enumerate(starts)])
            await asyncio.sleep(0.5)
            orchestrator = next(p for p in engine.workers.processes if p.role == "orchestrator")
            orchestrator.kill()
            engine.workers.start("orchestrator", wait=False)
            await producer.send_many([_command(DecideApproval, s, step_id="ok", approved=True,
                                               decided_by="key:crash", answer={"ok": True})
                                      for s in starts])
            done = await watcher.wait_finished([s.run_id for s in starts], timeout_s=120)
    assert all(isinstance(e, RunCompleted) for e in done.values()), \
        Counter(type(e).__name__ for e in done.values())
    for i, start in enumerate(starts):
        events = watcher.events[start.run_id]
        decided = Counter((e.step_id, e.timed_out) for e in events
                          if isinstance(e, ApprovalDecided))
        assert decided == {("ok", False): 1, ("auto", True): 1}, decided
        assert sum(isinstance(e, SignalReceived) for e in events) == 1
        assert sum(isinstance(e, SignalDelivered) for e in events) == 1
        assert done[start.run_id].output == {"e": {"n": i}}
        seqs = sorted(e.seq for e in events)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a duplicate"
