"""Metrics and tracing wrap the executor's tasks (bend.ops.interceptors): an interceptor passed in
is entered around each task's run and reports and hears how it settled; the default ones count
`bend_executor_steps` as the executor did itself. No Kafka: the executor with in-memory ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
from prometheus_client import REGISTRY

from bend.components import Registry
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.components.testing import flaky, noop
from bend.contracts.codec import encode
from bend.core.events import StepCancelled, StepScheduled
from bend.ops.interceptors import (
    Attempt, Interceptor, TracingInterceptor, around_task, settled_by,
)
from bend.tracing.propagation import KafkaHeaders
from streams.executor import Executor
from streams.executors import DictSecrets, ExecutionContext
from tests.unit.streams.fakes import FakeApp, FakeProducer, settings

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)


class Recording(Interceptor):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    @contextlib.contextmanager
    def _around(self) -> Iterator[None]:
        self.log.append(f"{self.name}>")
        yield
        self.log.append(f"<{self.name}")

    def task(self, task: StepScheduled, headers: KafkaHeaders | None
             ) -> contextlib.AbstractContextManager[object]:
        return self._around()

    def settled(self, task: StepScheduled, result: str, attempt: Attempt | None) -> None:
        error = f" {attempt.error_type}" if attempt is not None and attempt.error_type else ""
        self.log.append(f"{self.name} {task.step_id} {result}{error}")


def _task(run_id: str, component: str, inputs: dict) -> StepScheduled:
    return StepScheduled(event_id=f"ev-{run_id}", run_id=run_id, workflow_id="wf",
                         occurred_at=T0, step_id="a", node_type="tool", attempt=1,
                         input={"component": component, "inputs": inputs},
                         idempotency_key=f"{run_id}:a:1")


async def _handle(*tasks: StepScheduled, interceptors: list[Interceptor] | None = None,
                  withdrawn: StepScheduled | None = None) -> FakeProducer:
    producer = FakeProducer(auto_deliver=True)
    async with httpx.AsyncClient() as http:
        context = ExecutionContext(http=http, registry=Registry([*BUILTIN_COMPONENTS, noop,
                                                                 flaky]),
                                   secrets=DictSecrets(), clock=lambda: T0)
        executor = Executor(FakeApp(), settings(), "unit", producer=producer, context=context,
                            interceptors=interceptors)
        if withdrawn is not None:
            executor.withdraw(encode(StepCancelled(
                event_id=f"cancel-{withdrawn.run_id}", run_id=withdrawn.run_id,
                workflow_id="wf", occurred_at=T0, step_id=withdrawn.step_id,
                attempt=withdrawn.attempt, reason="the run was cancelled")))
        for offset, task in enumerate(tasks):
            await executor.handle(0, offset, encode(task), (task.run_id or "").encode())
    return producer


def _steps(outcome: str) -> float:
    return REGISTRY.get_sample_value("bend_executor_steps_total",
                                     {"node_type": "tool", "outcome": outcome}) or 0.0


async def test_an_executor_runs_each_task_inside_its_interceptors_and_tells_how_it_ended(
) -> None:
    log: list[str] = []
    producer = await _handle(_task("run-1", "noop@1", {}),
                             _task("run-2", "flaky@1", {"fail_attempts": 1}),
                             interceptors=[Recording("r", log)])
    assert log == ["r>", "r a succeeded", "<r", "r>", "r a failed FlakyFailure", "<r"]
    reports = [type(r.decoded()[0]).__name__ for r in producer.records]
    assert reports == ["CompleteStep", "FailStep"]  # the reports are unchanged


async def test_a_task_withdrawn_before_it_began_settles_as_cancelled_with_no_attempt() -> None:
    log: list[str] = []
    task = _task("run-3", "noop@1", {})
    producer = await _handle(task, interceptors=[Recording("r", log)], withdrawn=task)
    assert log == ["r>", "r a cancelled", "<r"]
    assert producer.records == []


async def test_the_default_interceptors_count_executor_steps_by_outcome() -> None:
    succeeded, failed, cancelled = _steps("succeeded"), _steps("failed"), _steps("cancelled")
    withdrawn = _task("run-6", "noop@1", {})
    await _handle(_task("run-4", "noop@1", {}), _task("run-5", "flaky@1", {"fail_attempts": 1}),
                  withdrawn, withdrawn=withdrawn)
    assert (_steps("succeeded"), _steps("failed"), _steps("cancelled")) == (
        succeeded + 1, failed + 1, cancelled + 1)


def test_the_first_interceptor_is_entered_first_and_left_last() -> None:
    log: list[str] = []
    task = _task("run-7", "noop@1", {})
    with around_task([Recording("a", log), TracingInterceptor(), Recording("b", log)])(task, None):
        log.append("run")
    assert log == ["a>", "b>", "run", "<b", "<a"]


def test_only_interceptors_that_listen_hear_how_tasks_settled() -> None:
    log: list[str] = []
    settled_by([Interceptor(), Recording("a", log)])(_task("run-8", "noop@1", {}), "withheld",
                                                     None)
    assert log == ["a a withheld"]
