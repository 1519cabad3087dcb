"""Several executor (and orchestrator) processes share the partitions; one executor stopped
mid-load (SIGTERM, or SIGKILL) loses no run and no step succeeds twice; a step still running
when its executor is stopped runs again on another."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from bend.core.events import RunCompleted, StepStarted, StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.explain import explain_run
from bend.kafka.producer import RecordProducer
from bend.runwatch import TERMINAL, RunWatcher

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


async def _diagnose(engine: Engine, watcher: RunWatcher, stuck: list[str]) -> str:
    """Why runs did not finish: their last events, what `explain` says, the workers' warnings."""
    lines = []
    for run_id in stuck[:3]:
        last = [f"{type(e).__name__}({getattr(e, 'step_id', '')})"
                for e in watcher.events.get(run_id, [])][-4:]
        try:
            reasons = [f"{r.kind}: {r.message}"
                       for r in (await explain_run(engine.settings, run_id)).reasons]
        except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the failure
            reasons = [f"explain failed: {exc!r}"]
        lines.append(f"run {run_id}: last events {last}; explain: {reasons}")
    for proc in engine.workers.processes:
        text = proc.log_path.read_text(errors="replace").splitlines()
        noted = [t[:300] for t in text if '"level": "error"' in t or '"level": "warning"' in t]
        lines.append(f"{proc.role} pid {proc.pid} alive={proc.alive()}: {noted[-8:]}")
    return "\n".join(lines)


async def _load_with_a_stop(how: str, orchestrators: int, executors: int = 3,
                            role: str = "executor") -> None:
    with running_engine(executors=executors, orchestrators=orchestrators,
                        partitions=6) as engine:
        starts = [engine.start_run(WORKFLOW, {}) for _ in range(RUNS)]
        began = time.monotonic()
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(starts)
            await asyncio.wait_for(_succeeded(watcher, RUNS), timeout=60)
            victim = next(p for p in engine.workers.processes if p.role == role)
            victim.kill() if how == "kill" else victim.stop()
            try:
                done = await watcher.wait_finished([s.run_id for s in starts], timeout_s=120)
            except TimeoutError:
                done = {r: e for r, events in watcher.events.items() for e in events
                        if isinstance(e, TERMINAL)}
            stuck = [s.run_id for s in starts if s.run_id not in done]
            why = await _diagnose(engine, watcher, stuck) if stuck else ""
        took = time.monotonic() - began
        survivors = [p for p in engine.workers.processes if p.role == role and p.alive()]
        assert len(survivors) == (executors if role == "executor" else orchestrators) - 1
    assert not stuck, f"{len(stuck)} of {RUNS} runs did not finish:\n{why}"
    assert all(isinstance(e, RunCompleted) for e in done.values()), \
        Counter(type(e).__name__ for e in done.values())
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


@pytest.mark.parametrize("how", ["term", "kill"])
async def test_two_orchestrators_lose_nothing_when_one_is_stopped_mid_load(
        kafka_bootstrap: str, how: str) -> None:
    # The survivor takes the stopped one's partitions: it rebuilds their runs from the log,
    # re-arms their timers and hands out their open tasks again.
    await _load_with_a_stop(how, orchestrators=2, executors=2, role="orchestrator")


SLOW = {"name": "slow", "steps": [
    {"id": "wait", "type": "tool", "component": "sleep@1", "inputs": {"seconds": 3}}]}


async def _started(watcher: RunWatcher, run_id: str) -> StepStarted:
    async for event in watcher.stream():
        if isinstance(event, StepStarted) and event.run_id == run_id:
            return event
    raise AssertionError("the run-events stream ended")


@pytest.mark.parametrize("how", ["term", "kill"])
async def test_a_step_running_when_its_executor_stops_is_finished_or_run_again(
        kafka_bootstrap: str, how: str) -> None:
    # SIGTERM drains: the step in flight finishes and reports before the process leaves (a
    # task whose offset is committed unfinished would be lost: its run would wait forever).
    # SIGKILL: the task's offset was not committed, so another executor runs the step again.
    with running_engine(executors=2, partitions=2) as engine:
        start = engine.start_run(SLOW, {})
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many([start])
            first = await asyncio.wait_for(_started(watcher, start.run_id), timeout=60)
            pid = int(first.worker_id.rsplit(":", 1)[1])
            victim = next(p for p in engine.workers.processes if p.pid == pid)
            victim.kill() if how == "kill" else victim.stop(grace_s=30)
            done = await watcher.wait_finished([start.run_id], timeout_s=60)
    assert isinstance(done.get(start.run_id), RunCompleted), done
    # (Killed 0.2 s into a 3 s step, the victim cannot have finished it: the other one did. Its
    # start report has the same id as the victim's, so the log keeps one StepStarted.)
    assert sum(isinstance(e, StepSucceeded) for e in watcher.events[start.run_id]) == 1
