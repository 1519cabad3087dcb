"""A cancelled attempt is withdrawn from its executor: the orchestrator hands the StepCancelled to
the tasks topic beside the task, and the executor stops the attempt (no Kafka)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import datetime, timezone

import httpx

from bend.components import Registry, component
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.contracts.codec import encode
from bend.core.commands import CancelRun, StartRun
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import StepCancelled, StepScheduled
from streams.executor import Executor
from streams.executors import DictSecrets, ExecutionContext
from streams.orchestrator import Orchestrator
from tests.unit.streams.fakes import (
    FakeApp, FakeCatalog, FakeProducer, FakeRunCache, settings, settle,
)

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)
SLOW = {"name": "slow", "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {}},
]}


async def test_cancelling_a_run_hands_its_open_attempts_withdrawal_to_the_tasks_partition(
) -> None:
    producer = FakeProducer(auto_deliver=True)
    orchestrator = Orchestrator(FakeApp(), settings(), producer=producer, cache=FakeRunCache(),
                                catalog=FakeCatalog())
    run_id = str(uuid.uuid4())
    start = StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf",
                     workflow_version=1, occurred_at=T0, correlation_id=run_id,
                     definition=definition_json(parse_definition(SLOW)), input={})
    cancel = CancelRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf",
                       occurred_at=T0, reason="enough")
    await orchestrator.handle(5, 0, T0.timestamp(), encode(start))
    await settle()
    producer.deliver(0)
    await settle()
    await orchestrator.handle(5, 1, T0.timestamp(), encode(cancel))
    await settle()
    producer.deliver(1)
    await settle()
    tasks = [(r.partition, r.decoded()[0]) for r in producer.records if r.topic == "unit.tasks"]
    assert [type(ev) for _, ev in tasks] == [StepScheduled, StepCancelled]
    assert {p for p, _ in tasks} == {5}  # where the task went, so its executor reads it
    withdrawn = tasks[1][1]
    assert (withdrawn.run_id, withdrawn.step_id, withdrawn.attempt) == (run_id, "a", 1)


started: list[str] = []


@component("sleeper", "1")
async def sleeper(s: float = 0) -> dict:
    """Sleep `s` seconds (a slow side effect)."""
    started.append("sleeper")
    await asyncio.sleep(s)
    return {"slept": s}


def _task(run_id: str, seconds: float) -> StepScheduled:
    return StepScheduled(event_id=f"ev-{run_id}", run_id=run_id, workflow_id="wf",
                         occurred_at=T0, step_id="a", node_type="tool", attempt=1,
                         input={"component": "sleeper@1", "inputs": {"s": seconds}},
                         idempotency_key=f"{run_id}:a:1")


def _withdrawal(task: StepScheduled) -> StepCancelled:
    return StepCancelled(event_id=f"cancel-{task.run_id}", run_id=task.run_id,
                         workflow_id="wf", occurred_at=T0, step_id=task.step_id,
                         attempt=task.attempt, reason="the run was cancelled")


async def _executor(producer: FakeProducer, http: httpx.AsyncClient) -> Executor:
    context = ExecutionContext(http=http, registry=Registry([*BUILTIN_COMPONENTS, sleeper]),
                               secrets=DictSecrets(), clock=lambda: T0)
    return Executor(FakeApp(), settings(), "unit", producer=producer, context=context)


async def test_a_running_attempt_is_stopped_by_its_withdrawal_and_reports_no_outcome() -> None:
    producer = FakeProducer(auto_deliver=True)
    async with httpx.AsyncClient() as http:
        executor = await _executor(producer, http)
        task = _task("run-1", seconds=30)
        began = time.monotonic()
        handled = asyncio.ensure_future(executor.handle(0, 0, encode(task), b"run-1"))
        await asyncio.sleep(0.3)
        assert executor.withdrawals.running() == 1
        assert executor.withdraw(encode(_withdrawal(task))) is True
        await asyncio.wait_for(handled, 5)
    assert time.monotonic() - began < 5
    assert executor.withdrawals.running() == 0
    reports = [type(r.decoded()[0]).__name__ for r in producer.records]
    assert reports == ["ReportStepStarted"]  # the attempt began; no CompleteStep or FailStep


async def test_an_attempt_withdrawn_before_it_began_never_runs() -> None:
    producer = FakeProducer(auto_deliver=True)
    started.clear()
    async with httpx.AsyncClient() as http:
        executor = await _executor(producer, http)
        task = _task("run-2", seconds=0)
        assert executor.withdraw(encode(_withdrawal(task))) is False  # nothing ran yet
        sent = await executor.handle(0, 1, encode(task), b"run-2")
        # the withdrawal record itself reaches the executor agent too: it is no task to run
        assert await executor.handle(0, 2, encode(_withdrawal(task)), b"run-2") == []
    assert sent == [] and started == [] and producer.records == []


async def test_another_attempt_of_the_step_is_not_stopped_by_an_old_withdrawal() -> None:
    producer = FakeProducer(auto_deliver=True)
    async with httpx.AsyncClient() as http:
        executor = await _executor(producer, http)
        old = _task("run-3", seconds=0)
        executor.withdraw(encode(_withdrawal(old)))
        again = dataclasses.replace(old, attempt=2, event_id="ev-run-3-2")
        await executor.handle(0, 3, encode(again), b"run-3")
    assert [type(r.decoded()[0]).__name__ for r in producer.records] == ["CompleteStep"]


async def test_the_worker_stopping_is_not_taken_for_a_withdrawal() -> None:
    producer = FakeProducer(auto_deliver=True)
    async with httpx.AsyncClient() as http:
        executor = await _executor(producer, http)
        handled = asyncio.ensure_future(executor.handle(0, 0, encode(_task("run-4", 30)),
                                                        b"run-4"))
        await asyncio.sleep(0.1)
        handled.cancel()
        try:
            await handled
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the handler swallowed its own cancellation")
    assert executor.withdrawals.running() == 0
