"""Timers are disarmed when what they guard ends: an attempt's timeout when it ends, every timer
of a run when the run ends; a timer armed after its work ended (its decision's write came back
later) is not armed at all. No Kafka: the orchestrator with in-memory ports."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from bend.contracts.codec import encode
from bend.core.commands import CancelRun, CompleteStep, StartRun
from bend.core.definitions import definition_json, parse_definition
from streams.orchestrator import Orchestrator
from streams.scheduler import TimerQueue
from tests.unit.streams.fakes import (
    FakeApp, FakeCatalog, FakeProducer, FakeRunCache, settings, settle,
)

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)
TIMED = {"name": "timed", "timeout": "1h", "defaults": {"timeout": "30s"}, "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {}},
    {"id": "b", "type": "tool", "component": "noop@1", "inputs": {}, "after": ["a"]},
]}


async def _never(*_: object) -> None:
    raise AssertionError("no timer may fire in these tests")


def _queue() -> TimerQueue:
    return TimerQueue(_never, clock=lambda: T0)


def _arm(q: TimerQueue, run_id: str, timer_id: str) -> None:
    q.arm(run_id=run_id, workflow_id="w", workflow_version=1, timer_id=timer_id,
          fire_at=T0 + timedelta(minutes=5), partition=0)


def test_disarming_forgets_the_given_timers_a_prefix_or_the_whole_run() -> None:
    q = _queue()
    for t in ("r:step_timeout:a:1", "r:step_timeout:b:1", "r:run_timeout", "s:run_timeout"):
        _arm(q, t.split(":")[0], t)
    assert q.disarm("r", ("r:step_timeout:a:1",)) == 1 and len(q) == 3
    assert q.disarm("r", prefix="r:step_timeout:b:") == 1 and len(q) == 2
    assert q.disarm("r", whole_run=True) == 1 and len(q) == 1
    _arm(q, "r", "r:step_timeout:c:1")  # the run ended: nothing of it is armed again
    _arm(q, "r", "r:step_timeout:a:1")
    assert len(q) == 1


def _orchestrator() -> tuple[Orchestrator, FakeProducer]:
    producer = FakeProducer(auto_deliver=True)
    return Orchestrator(FakeApp(), settings(), producer=producer, cache=FakeRunCache(),
                        catalog=FakeCatalog()), producer


def _start() -> StartRun:
    run_id = str(uuid.uuid4())
    return StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf", occurred_at=T0,
                    workflow_version=1, correlation_id=run_id, input={},
                    definition=definition_json(parse_definition(TIMED)))


def _complete(start: StartRun, step_id: str) -> CompleteStep:
    return CompleteStep(event_id=str(uuid.uuid4()), run_id=start.run_id, workflow_id="wf",
                        workflow_version=1, occurred_at=T0, step_id=step_id, attempt=1,
                        output={})


async def _decided(orchestrator: Orchestrator, producer: FakeProducer, offset: int,
                   cmd: object) -> None:
    """Decide `cmd` and deliver its batch (its timers are armed once it is written)."""
    await orchestrator.handle(0, offset, T0.timestamp(), encode(cmd))
    await settle()
    producer.deliver()
    await settle()


async def test_an_attempts_timeout_is_disarmed_when_it_ends_and_all_when_the_run_does() -> None:
    orchestrator, producer = _orchestrator()
    start = _start()
    await _decided(orchestrator, producer, 0, start)
    armed = set(orchestrator.timers._armed)  # noqa: SLF001 - what the queue holds
    assert armed == {f"{start.run_id}:run_timeout", f"{start.run_id}:step_timeout:a:1"}
    await _decided(orchestrator, producer, 1, _complete(start, "a"))
    assert set(orchestrator.timers._armed) == {  # noqa: SLF001
        f"{start.run_id}:run_timeout", f"{start.run_id}:step_timeout:b:1"}
    await _decided(orchestrator, producer, 2, _complete(start, "b"))
    assert len(orchestrator.timers) == 0  # the run completed: its run timeout went too


async def test_a_cancelled_run_leaves_no_timer_armed() -> None:
    orchestrator, producer = _orchestrator()
    start = _start()
    await orchestrator.handle(0, 0, T0.timestamp(), encode(start))
    cancel = CancelRun(event_id=str(uuid.uuid4()), run_id=start.run_id, workflow_id="wf",
                       workflow_version=1, occurred_at=T0, reason="test", requested_by="t")
    # Cancelled before the start's write came back (the two share its batch): the start's
    # timers, armed once that write is delivered, must not be armed at all.
    await orchestrator.handle(0, 1, T0.timestamp(), encode(cancel))
    await settle()
    for _ in range(3):  # deliver each round as it is written
        for batch in producer.batches:
            if not batch.delivery.done():
                batch.delivery.set_result(None)
        await settle()
    assert len(orchestrator.timers) == 0
