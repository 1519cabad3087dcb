"""The orchestrator's group commit, with an in-memory producer and run cache (no Kafka)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest

from bend.contracts.codec import encode
from bend.core.commands import CompleteStep, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import RunStarted, StepScheduled
from streams.orchestrator import Orchestrator
from tests.unit.streams.fakes import (
    FakeApp, FakeCatalog, FakeProducer, FakeRunCache, settings, settle,
)

CHAIN = {"name": "two", "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {}},
    {"id": "b", "type": "tool", "component": "noop@1", "inputs": {}, "after": ["a"]},
]}
T = datetime(2026, 12, 7, tzinfo=timezone.utc).timestamp()


def _start() -> StartRun:
    run_id = str(uuid.uuid4())
    return StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-two",
                    workflow_version=1, occurred_at=datetime.fromtimestamp(T, timezone.utc),
                    correlation_id=run_id, definition=definition_json(parse_definition(CHAIN)),
                    input={})


def _complete(start: StartRun, step_id: str) -> CompleteStep:
    return CompleteStep(event_id=str(uuid.uuid4()), run_id=start.run_id,
                        workflow_id=start.workflow_id, workflow_version=1,
                        occurred_at=start.occurred_at, step_id=step_id, output={})


class Acks:
    """Records which commands were acked, in order."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def __call__(self, offset: int):  # noqa: ANN204 - an ack callback for one offset
        return lambda: self.acked.append(offset)


@pytest.fixture
def parts() -> tuple[Orchestrator, FakeProducer, FakeApp, Acks]:
    app, producer = FakeApp(), FakeProducer(auto_deliver=True)
    orchestrator = Orchestrator(app, settings(), producer=producer, cache=FakeRunCache(),
                                catalog=FakeCatalog())
    return orchestrator, producer, app, Acks()


async def _handle(orchestrator: Orchestrator, offset: int, cmd: object, acks: Acks,
                  partition: int = 0) -> None:
    await orchestrator.handle(partition, offset, T, encode(cmd), ack=acks(offset))


async def test_an_idle_partitions_decision_is_written_at_once_as_one_batch(parts) -> None:
    orchestrator, producer, _, acks = parts
    start = _start()
    await _handle(orchestrator, 0, start, acks)
    await settle()
    assert len(producer.batches) == 1
    expected = decide(None, start, datetime.fromtimestamp(T, timezone.utc))
    assert isinstance(expected, Accepted)
    assert [e.event_id for e in producer.batches[0].decoded()] == \
        [e.event_id for e in expected.events]
    assert producer.batches[0].topic == "unit.run-events" and producer.batches[0].partition == 0
    # its task went out with the batch, to the tasks topic
    tasks = [r for r in producer.records if r.topic == "unit.tasks"]
    assert [type(t.decoded()[0]) for t in tasks] == [StepScheduled]


async def test_commands_arriving_while_a_write_is_in_flight_go_out_as_one_next_batch(
        parts) -> None:
    orchestrator, producer, _, acks = parts
    starts = [_start() for _ in range(4)]
    await _handle(orchestrator, 0, starts[0], acks)
    await settle()
    assert len(producer.batches) == 1  # in flight: not delivered yet
    for offset, start in enumerate(starts[1:], start=1):
        await _handle(orchestrator, offset, start, acks)
    await settle()
    assert len(producer.batches) == 1  # the others wait for the write in flight
    producer.deliver(0)
    await settle()
    assert len(producer.batches) == 2
    second = producer.batches[1].decoded()
    assert {e.run_id for e in second} == {s.run_id for s in starts[1:]}
    assert sum(isinstance(e, RunStarted) for e in second) == 3
    # each run's events stay together and in order inside the group's batch
    for start in starts[1:]:
        seqs = [e.seq for e in second if e.run_id == start.run_id]
        assert seqs == sorted(seqs) and seqs[0] == 1


async def test_a_commands_ack_waits_for_its_batchs_delivery(parts) -> None:
    orchestrator, producer, _, acks = parts
    await _handle(orchestrator, 0, _start(), acks)
    await settle()
    await _handle(orchestrator, 1, _start(), acks)
    await settle()
    assert acks.acked == []
    producer.deliver(0)
    await settle()
    assert acks.acked == [0]  # offset 1 is in the next batch, still in flight
    producer.deliver(1)
    await settle()
    assert acks.acked == [0, 1]


async def test_a_later_decision_of_the_same_run_is_decided_before_the_earlier_write_lands(
        parts) -> None:
    orchestrator, producer, _, acks = parts
    start = _start()
    await _handle(orchestrator, 0, start, acks)
    await settle()
    await _handle(orchestrator, 1, _complete(start, "a"), acks)  # state from memory, not log
    producer.deliver(0)
    await settle()
    second = producer.batches[1].decoded()
    assert any(isinstance(e, StepScheduled) and e.step_id == "b" for e in second)
    first_seqs = [e.seq for e in producer.batches[0].decoded()]
    assert min(e.seq for e in second) == max(first_seqs) + 1


async def test_a_rejected_command_is_acked_only_after_the_writes_before_it(parts) -> None:
    orchestrator, producer, _, acks = parts
    start = _start()
    await _handle(orchestrator, 0, start, acks)
    await _handle(orchestrator, 1, _complete(start, "nope"), acks)  # no such step: rejected
    await settle()
    assert orchestrator.rejected == 1 and acks.acked == []
    producer.deliver(0)
    await settle()
    assert acks.acked == [0, 1]
    assert len(producer.batches) == 1  # a rejection writes nothing


async def test_commands_decided_before_the_writer_starts_share_its_first_batch(parts) -> None:
    orchestrator, producer, _, acks = parts
    await _handle(orchestrator, 0, _start(), acks)
    await _handle(orchestrator, 1, _start(), acks)  # no loop turn in between
    await settle()
    assert len(producer.batches) == 1 and len(producer.batches[0].records) > 2
    producer.deliver(0)
    await settle()
    assert acks.acked == [0, 1]


async def test_every_partitions_group_goes_out_in_the_same_round(parts) -> None:
    orchestrator, producer, _, acks = parts
    await _handle(orchestrator, 0, _start(), acks, partition=0)
    await settle()
    await _handle(orchestrator, 1, _start(), acks, partition=1)
    await _handle(orchestrator, 2, _start(), acks, partition=2)
    await _handle(orchestrator, 3, _start(), acks, partition=1)
    await settle()
    assert [b.partition for b in producer.batches] == [0]  # the next round waits
    producer.deliver(0)
    await settle()
    assert [b.partition for b in producer.batches] == [0, 1, 2]  # one batch per partition
    assert len(producer.batches[1].decoded()) == 2 * len(producer.batches[2].decoded())
    producer.deliver(2)
    await settle()
    assert acks.acked == [0]  # a round is acked once all of it is delivered
    producer.deliver(1)
    await settle()
    assert sorted(acks.acked) == [0, 1, 2, 3]


async def test_a_failed_batch_crashes_the_worker_and_acks_nothing_after_it(parts) -> None:
    orchestrator, producer, app, acks = parts
    await _handle(orchestrator, 0, _start(), acks)
    await settle()
    await _handle(orchestrator, 1, _start(), acks)
    await settle()
    producer.fail(0, RuntimeError("broker said no"))
    await settle()
    assert [str(e) for e in app.crashed] == ["broker said no"]
    assert acks.acked == []
    assert len(producer.batches) == 1  # the group after the lost write is never written
    await _handle(orchestrator, 2, _start(), acks)
    await settle()
    assert len(producer.batches) == 1 and acks.acked == []


async def test_an_undelivered_task_holds_the_ack_too(parts) -> None:
    orchestrator, producer, _, acks = parts
    producer.auto_deliver = False
    await _handle(orchestrator, 0, _start(), acks)
    await settle()
    producer.deliver(0)
    await settle()
    assert acks.acked == []  # the batch is in, its task is not yet
    task = next(r for r in producer.records if r.topic == "unit.tasks")
    task.delivery.set_result(None)
    await settle()
    assert acks.acked == [0]


async def test_a_command_redelivered_after_a_crash_writes_nothing_again(parts) -> None:
    orchestrator, producer, _, acks = parts
    start = _start()
    decision = decide(None, start, datetime.fromtimestamp(T, timezone.utc))
    assert isinstance(decision, Accepted)
    runs = await orchestrator.cache.partition(0)
    for event in decision.events:  # as a rebuild from the log would fold them
        runs.fold(event)
    await _handle(orchestrator, 7, start, acks)
    await settle()
    assert producer.batches == [] and acks.acked == [7]


async def test_an_undecodable_command_is_dead_lettered_then_acked(parts) -> None:
    orchestrator, producer, _, acks = parts
    await orchestrator.handle(0, 3, T, b"not avro", ack=acks(3))
    await settle()
    assert [r.topic for r in producer.records] == ["unit.dead-letters"]
    assert acks.acked == [3]


async def test_revocation_waits_for_the_partitions_last_write(parts) -> None:
    orchestrator, producer, _, acks = parts
    await _handle(orchestrator, 0, _start(), acks)
    await settle()
    await _handle(orchestrator, 1, _start(), acks)
    await settle()

    async def deliver_later() -> None:
        await settle()
        producer.deliver(0)
        await settle()
        producer.deliver(1)

    delivering = asyncio.ensure_future(deliver_later())
    await orchestrator.writer.drain({0})
    assert acks.acked == [0, 1]
    await delivering


def test_a_large_group_is_cut_between_decisions_never_inside_one() -> None:
    from streams import groupcommit

    group = groupcommit._Group()  # noqa: SLF001 - the cutting rule itself
    big = b"x" * (groupcommit.MAX_BATCH_BYTES // 3)
    for n in range(5):
        group.decisions.append([(b"k", big), (b"k", f"{n}".encode())])
    batches = group.batches()
    assert len(batches) > 1
    assert [len(b) % 2 for b in batches] == [0] * len(batches)  # whole decisions only
    assert sum(len(b) for b in batches) == 10


async def test_a_group_past_one_batch_is_written_over_rounds_and_acked_after_the_last() -> None:
    from streams import groupcommit

    producer, app, acked = FakeProducer(auto_deliver=True), FakeApp(), []
    writer = groupcommit.GroupCommit(producer, "unit.run-events", app.crash)
    third = b"x" * (groupcommit.MAX_BATCH_BYTES // 3)
    for n in range(4):
        writer.add(0, [(b"k", third)], ack=lambda n=n: acked.append(n))
    await settle()
    assert len(producer.batches) == 1 and len(producer.batches[0].records) == 2
    producer.deliver(0)
    await settle()
    assert acked == [] and len(producer.batches) == 2  # the rest, in the next round
    producer.deliver(1)
    await settle()
    assert acked == [0, 1, 2, 3]


async def test_a_command_off_its_runs_partition_is_forwarded_there_unchanged(parts) -> None:
    from streams.routing import home_partition

    orchestrator, producer, _, acks = parts
    start = _start()
    key = start.run_id.encode()
    home = home_partition(key, orchestrator.partitions)
    elsewhere = (home + 1) % orchestrator.partitions
    raw = encode(start)
    await orchestrator.handle(elsewhere, 7, T, raw, key, [("traceparent", b"x")],
                              ack=acks(7))
    await settle()
    assert producer.batches == []  # nothing decided where it arrived
    forwarded = [r for r in producer.records if r.topic == "unit.commands"]
    assert [(r.partition, r.records) for r in forwarded] == [(home, [(key, raw)])]
    assert acks.acked == [7]  # released once the forward was delivered
    await orchestrator.handle(home, 0, T, raw, key, ack=acks(0))
    await settle()
    assert len(producer.batches) == 1 and producer.batches[0].partition == home
