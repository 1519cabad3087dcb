"""The stall watch: an idle worker holding a partition whose records wait, with its group's
committed offset not moving, re-reads that partition from the committed offset; a busy worker,
a moving offset or a partition read to its end is left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition as Partition
from confluent_kafka.admin import AdminClient, NewTopic

from bend.settings import KafkaSettings
from streams.stall import StallWatch

pytestmark = pytest.mark.integration


@dataclass
class FakeConsumer:
    """What the watch uses of Faust's consumer: the assignment, resume and seek."""

    tps: set[TopicPartition]
    positions: dict[int, int] = field(default_factory=dict)
    seeks: list[tuple[int, int]] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    _paused_partitions: set[Any] = field(default_factory=set)

    def assignment(self) -> set[TopicPartition]:
        return self.tps

    def resume_partitions(self, tps: set[TopicPartition]) -> None:
        self.resumed += [tp.partition for tp in tps]

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))

    async def position(self, tp: TopicPartition) -> int:
        return self.positions.get(tp.partition, 0)


@dataclass
class FakeApp:
    consumer: FakeConsumer


async def _commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets for `group` as its consumers would (the group has no member here)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [Partition(topic, p, o)
                                                   for p, o in offsets.items()])
    await asyncio.to_thread(
        lambda: admin.alter_consumer_group_offsets([request])[group].result(timeout=30))


async def test_an_idle_worker_re_reads_a_partition_it_holds_without_reading(
        kafka_bootstrap: str) -> None:
    topic, group = f"stall-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=30)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for partition in (0, 1, 2):
            for i in range(5):
                await producer.send_and_wait(topic, b"x%d" % i, partition=partition)
    finally:
        await producer.stop()
    # 0: 3 of 5 read, stuck there; 1: read to its end; 2: not held by this worker.
    await _commit(kafka_bootstrap, group, topic, {0: 3, 1: 5, 2: 1})
    consumer = FakeConsumer({TopicPartition(topic, 0), TopicPartition(topic, 1)})
    busy = {"n": 1}
    watch = StallWatch(FakeApp(consumer), group, topic, lambda: busy["n"],
                       KafkaSettings(bootstrap=kafka_bootstrap),
                       stall_after_s=0.6)

    for _ in range(4):  # busy: never judged
        assert await watch.check() == []
        await asyncio.sleep(0.25)
    busy["n"] = 0
    assert await watch.check() == []  # first idle look starts the clock
    await asyncio.sleep(0.3)
    await _commit(kafka_bootstrap, group, topic, {0: 4})  # it moved: the clock starts again
    assert await watch.check() == []
    await asyncio.sleep(0.4)
    assert await watch.check() == []  # 0.4 s without a move: not yet
    await asyncio.sleep(0.4)
    consumer.positions[0] = 5  # fetched to the end, only not committed: no stall
    assert await watch.check() == []
    assert await watch.check() == []
    consumer.positions[0] = 4  # never fetched past the committed offset
    assert await watch.check() == [0]  # 0.8 s idle, the offset still, a record waiting
    assert consumer.seeks == [(0, 4)] and consumer.resumed == [0]
    assert await watch.check() == []  # repaired: the clock starts again
    await watch.close()


def _run_stalled_executor(check_s: str, limit_s: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BEND_KAFKA__TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}",
           "BEND_KAFKA__DEFAULT_PARTITIONS": "2", "BEND_OPS__ENABLED": "false",
           "BEND_WORKERS__PARTITION_STALL_AFTER_S": "3", "BEND_WORKERS__STALL_CHECK_S": check_s}
    script = Path(__file__).with_name("stalled_executor.py")
    return subprocess.run([sys.executable, str(script), str(limit_s)], env=env, text=True,
                          capture_output=True, timeout=limit_s + 60)


def test_a_real_faust_worker_holding_a_partition_it_does_not_fetch_reads_it_again(
        kafka_bootstrap: str) -> None:
    done = _run_stalled_executor(check_s="1", limit_s=30)
    assert done.returncode == 0 and "recovered" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "partition_stalled" in done.stdout + done.stderr
