"""Step attempts already reported in the commands log but not yet decided by the orchestrator.

After a crash, a new owner hands out every task its rebuilt partition still has open. An
executor may have finished some of them already: their CompleteStep or FailStep waits in the
commands partition after the group's committed offset. Those are not handed out again (a step
whose completion was written does not run again); the waiting report is decided as usual.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from bend.contracts.codec import decode
from bend.core.commands import AwaitToolApproval, CompleteStep, FailStep
from bend.core.errors import BendError
from bend.kafka import clients
from bend.settings import KafkaSettings

__all__ = ["Attempt", "reported_attempts"]

log = structlog.get_logger(__name__)

Attempt = tuple[str, str, int]  # run_id, step_id, attempt
_TIMEOUT_S = 10.0


def _committed(kafka: KafkaSettings, group: str, topic: str, partition: int) -> int:
    """The group's committed offset on the partition, -1 if none (blocking: run in a thread)."""
    admin = clients.confluent_admin(kafka)
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition)])],
        request_timeout=_TIMEOUT_S)[group].result(timeout=_TIMEOUT_S)
    for tp in listed.topic_partitions:
        if tp.partition == partition:
            return int(tp.offset)
    return -1


async def reported_attempts(kafka: KafkaSettings, group: str, topic: str, partition: int,
                            max_records: int = 200_000, max_seconds: float = 5.0
                            ) -> set[Attempt]:
    """The step attempts with a report (CompleteStep, FailStep, or a pause on a gated tool call,
    AwaitToolApproval) after the committed offset.

    At most the last `max_records` records and `max_seconds` of reading: after a long outage a
    task whose report lies further back may still be handed out again (at least once, as ever).
    """
    started = time.perf_counter()
    committed = await asyncio.to_thread(_committed, kafka, group, topic, partition)
    tp = AioTopicPartition(topic, partition)
    consumer = clients.consumer(kafka, enable_auto_commit=False,
                                group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    found: set[Attempt] = set()
    read = end = 0
    try:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        start = max(begin, committed if committed >= 0 else begin, end - max_records)
        consumer.seek(tp, start)
        deadline = started + max_seconds
        while start < end and await consumer.position(tp) < end \
                and time.perf_counter() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            for record in batch.get(tp, []):
                if record.offset >= end:
                    break
                read += 1
                try:
                    cmd = decode(record.value)
                except BendError:
                    continue  # the agent dead-letters it
                if isinstance(cmd, (CompleteStep, FailStep, AwaitToolApproval)) and cmd.run_id:
                    found.add((cmd.run_id, cmd.step_id, cmd.attempt))
    finally:
        await consumer.stop()
    log.info("reported_attempts_read", partition=partition, committed=committed, end=end,
             records=read, reported=len(found), seconds=round(time.perf_counter() - started, 3))
    return found
