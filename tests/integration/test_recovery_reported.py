"""After kill -9 of the orchestrator, a step whose completion already waits unread in the commands
log is not handed out again (issue 17 item 5): each step attempt is reported once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bend.contracts.codec import decode
from bend.core.commands import CompleteStep
from bend.core.events import RunCompleted, StepScheduled, StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from streams.app import topic_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RUNS = 12
WORKFLOW = {"name": "napping", "steps": [
    {"id": "a", "type": "tool", "component": "sleep@1", "inputs": {"seconds": "${`1.5`}"}},
    {"id": "b", "type": "tool", "component": "noop@1", "inputs": {"n": "2"}, "after": ["a"]},
]}


async def _reports(engine: Engine) -> Counter[tuple[str, str, int]]:
    """CompleteStep commands in the commands log, by (run, step, attempt)."""
    s = engine.settings
    topic = topic_names(s).commands
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    found: Counter[tuple[str, str, int]] = Counter()
    try:
        tps = [TopicPartition(topic, p) for p in range(s.kafka.default_partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    cmd = decode(r.value)
                    if isinstance(cmd, CompleteStep):
                        found[(cmd.run_id or "", cmd.step_id, cmd.attempt)] += 1
    finally:
        await consumer.stop()
    return found


def _tasks_lag(engine: Engine) -> int:
    """Tasks the executor group has not committed yet (blocking)."""
    s = engine.settings
    admin = AdminClient({"bootstrap.servers": s.kafka.bootstrap})
    group, topic = f"{s.kafka.topic_prefix}-executor", topic_names(s).tasks
    tps = [KafkaTopicPartition(topic, p) for p in range(s.kafka.default_partitions)]
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, tps)])[group].result(timeout=10)
    committed = {tp.partition: max(tp.offset, 0) for tp in listed.topic_partitions}
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps})
    return sum(f.result(timeout=10).offset - committed[tp.partition] for tp, f in ends.items())


async def _executor_idle(engine: Engine) -> None:
    """Wait until the executor has done every task handed out (a re-run one included)."""
    deadline = time.monotonic() + 60
    while await asyncio.to_thread(_tasks_lag, engine) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)


async def test_a_step_whose_completion_waits_unread_is_not_run_again_after_a_crash() -> None:
    with running_engine() as engine:
        starts = [engine.start_run(WORKFLOW, {}) for _ in range(RUNS)]
        ids = {s.run_id for s in starts}
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(starts)
            orchestrator = next(p for p in engine.workers.processes if p.role == "orchestrator")
            scheduled: set[str] = set()
            async for event in watcher.stream():  # every `a` handed out, none reported yet
                if isinstance(event, StepScheduled) and event.step_id == "a":
                    scheduled.add(event.run_id or "")
                    if scheduled >= ids:
                        break
            os.kill(orchestrator.pid, signal.SIGSTOP)  # reports of `a` now wait unread
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                reports = await _reports(engine)
                if {r for (r, s, _) in reports if s == "a"} >= ids:
                    break
                await asyncio.sleep(0.5)
            orchestrator.kill()
            engine.workers.start("orchestrator", wait=False)
            done = await watcher.wait_finished(ids, timeout_s=120)
        await _executor_idle(engine)  # a task handed out again runs after its run finished
        reports = await _reports(engine)
    assert all(isinstance(e, RunCompleted) for e in done.values())
    twice = {k: n for k, n in reports.items() if k[0] in ids and n > 1}
    assert not twice, f"steps reported (run) more than once: {twice}"
    for run_id in ids:
        succeeded = Counter(e.step_id for e in watcher.events[run_id]
                            if isinstance(e, StepSucceeded))
        assert succeeded == {"a": 1, "b": 1}, succeeded
