"""The executor reports without waiting for each delivery and acks a task once all are in."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import httpx

from bend.components import Registry, component
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.components.testing import noop
from bend.contracts.codec import encode
from bend.core.commands import CompleteStep, ReportStepStarted
from bend.core.events import StepScheduled
from streams.acks import ack_when_delivered, once
from streams.executor import Executor
from streams.executors import DictSecrets, ExecutionContext
from tests.unit.streams.fakes import FakeApp, FakeProducer, settings, settle

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)


def _task(n: int) -> StepScheduled:
    return StepScheduled(event_id=f"ev-{n}", run_id=f"run-{n}", workflow_id="wf",
                         occurred_at=T0, step_id="a", node_type="tool",
                         input={"component": "noop@1", "inputs": {}},
                         idempotency_key=f"run-{n}:a:1")


async def test_handle_returns_before_its_reports_are_delivered() -> None:
    producer = FakeProducer()
    async with httpx.AsyncClient() as http:
        context = ExecutionContext(http=http, registry=Registry([*BUILTIN_COMPONENTS, noop]),
                                   secrets=DictSecrets(), clock=lambda: T0)
        executor = Executor(FakeApp(), settings(), "unit", producer=producer, context=context)
        first = await executor.handle(0, 0, encode(_task(1)), b"run-1")
        second = await executor.handle(0, 1, encode(_task(2)), b"run-2")
    assert not any(d.done() for d in first + second)  # nothing waited for the broker
    reports = [r.decoded()[0] for r in producer.records]
    assert [type(r) for r in reports] == [CompleteStep, CompleteStep]
    assert {r.run_id for r in reports} == {"run-1", "run-2"}
    assert all(r.topic == "unit.commands" for r in producer.records)


async def test_a_task_is_acked_only_once_every_report_is_delivered() -> None:
    loop = asyncio.get_running_loop()
    deliveries = [loop.create_future(), loop.create_future()]
    acked: list[str] = []
    ack_when_delivered(deliveries, lambda: acked.append("task"))
    deliveries[0].set_result(None)
    await settle()
    assert acked == []
    deliveries[1].set_result(None)
    await settle()
    assert acked == ["task"]


async def test_a_lost_report_never_acks_its_task() -> None:
    loop = asyncio.get_running_loop()
    deliveries = [loop.create_future(), loop.create_future()]
    acked: list[str] = []
    ack_when_delivered(deliveries, lambda: acked.append("task"))
    deliveries[0].set_exception(RuntimeError("lost"))
    deliveries[1].set_result(None)
    await settle()
    assert acked == []


async def test_a_task_with_nothing_to_report_is_acked_at_once() -> None:
    acked: list[str] = []
    ack_when_delivered([], lambda: acked.append("task"))
    assert acked == ["task"]


def test_an_ack_called_twice_releases_its_record_once() -> None:
    calls: list[str] = []
    ack = once(lambda: calls.append("ack"))
    ack()
    ack()  # e.g. a handler that queued its ack, then raised
    assert calls == ["ack"]


@component("nap", "1")
async def nap(ms: int = 0) -> dict:
    """Take `ms` milliseconds."""
    await asyncio.sleep(ms / 1000)
    return {}


async def _reports(ms: int) -> list[Any]:
    producer = FakeProducer(auto_deliver=True)
    conf = settings()
    conf = conf.model_copy(update={"workers": conf.workers.model_copy(
        update={"report_started_after_ms": 20})})
    task = StepScheduled(event_id="ev-nap", run_id="run-nap", workflow_id="wf", occurred_at=T0,
                         step_id="a", node_type="tool",
                         input={"component": "nap@1", "inputs": {"ms": ms}},
                         idempotency_key="run-nap:a:1")
    async with httpx.AsyncClient() as http:
        context = ExecutionContext(http=http, registry=Registry([*BUILTIN_COMPONENTS, nap]),
                                   secrets=DictSecrets(), clock=lambda: T0)
        executor = Executor(FakeApp(), conf, "unit", producer=producer, context=context)
        sent = await executor.handle(0, 0, encode(task), b"run-nap")
    assert len(sent) == len(producer.records)
    return [r.decoded()[0] for r in producer.records]


async def test_a_step_still_running_is_reported_started_before_its_end() -> None:
    reports = await _reports(ms=120)
    assert [type(r) for r in reports] == [ReportStepStarted, CompleteStep]


async def test_a_quick_step_is_reported_by_its_end_only() -> None:
    reports = await _reports(ms=0)
    assert [type(r) for r in reports] == [CompleteStep]
