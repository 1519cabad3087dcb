"""Several executor (and orchestrator) processes share the partitions; one executor stopped
mid-load (SIGTERM, or SIGKILL) loses no run and no step succeeds twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from bend.core.events import RunCompleted, StepSucceeded
from bend.devstack.engine import running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RUNS = 60
STEPS = ("a", "b", "c", "d")
WORKFLOW = {
    "name": "spread",
    "steps": [
        {"id": s, "type": "tool", "component": "noop@1", "inputs": {"n": str(i)},
         **({"after": [STEPS[i - 1]]} if i else {})}
        for i, s in enumerate(STEPS)
    ],
}


async def _succeeded(watcher: RunWatcher, count: int) -> None:
    seen = 0
    async for event in watcher.stream():
        if isinstance(event, StepSucceeded):
            seen += 1
            if seen >= count:
                return


async def _load_with_a_stop(how: str, orchestrators: int) -> None:
    with running_engine(executors=3, orchestrators=orchestrators, partitions=6) as engine:
        starts = [engine.start_run(WORKFLOW, {}) for _ in range(RUNS)]
        began = time.monotonic()
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(starts)
            await asyncio.wait_for(_succeeded(watcher, RUNS), timeout=60)
            victim = next(p for p in engine.workers.processes if p.role == "executor")
            victim.kill() if how == "kill" else victim.stop()
            done = await watcher.wait_finished([s.run_id for s in starts], timeout_s=120)
        took = time.monotonic() - began
        survivors = [p for p in engine.workers.processes if p.role == "executor" and p.alive()]
        assert len(survivors) == 2
    assert all(isinstance(e, RunCompleted) for e in done.values()), \
        Counter(type(e).__name__ for e in done.values())
    assert len(done) == RUNS
    for start in starts:
        succeeded = Counter(e.step_id for e in watcher.events[start.run_id]
                            if isinstance(e, StepSucceeded))
        assert set(succeeded) == set(STEPS) and max(succeeded.values()) == 1, succeeded
    assert took < 120, f"the load took {took:.1f} s"


async def test_three_executors_and_two_orchestrators_lose_nothing_when_one_executor_is_stopped(
        kafka_bootstrap: str) -> None:
    await _load_with_a_stop("term", orchestrators=2)


async def test_three_executors_lose_nothing_when_one_is_killed(kafka_bootstrap: str) -> None:
    await _load_with_a_stop("kill", orchestrators=1)
