"""Reading a log from its start: where every reader of a whole partition begins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bend.kafka import clients
from bend.settings import KafkaSettings

__all__ = ["read_to_end", "seek_to_start"]


async def seek_to_start(consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
                        ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Assign `tps` and seek each to its first offset; returns (begins, ends) at this moment.

    An explicit seek, not `seek_to_beginning()`: right after `assign()` that can lose to the
    consumer's own first offset reset and leave it at the end (aiokafka 0.14), which once made
    a rebuilt orchestrator see an empty log.
    """
    consumer.assign(list(tps))
    begins = await consumer.beginning_offsets(list(tps))
    ends = await consumer.end_offsets(list(tps))
    for tp in tps:
        consumer.seek(tp, begins[tp])
    return begins, ends


async def read_to_end(kafka: KafkaSettings, topic: str, partitions: Iterable[int] | None = None,
                      *, fetch_bytes: int = 1024 * 1024) -> AsyncIterator[tuple[int, Any]]:
    """(partition, record) of every record of `topic` (or of its `partitions`) from its start
    up to the end it has when reading begins; KafkaUnavailable if the broker does not answer."""
    consumer = clients.consumer(kafka, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest",
                                max_partition_fetch_bytes=fetch_bytes)
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise await clients.unavailable(kafka, f"cannot read {topic} ({exc})") from exc
    try:
        if partitions is None:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - a fresh topic
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return
        begins, ends = await seek_to_start(consumer, tps)
        pending = {tp for tp in tps if begins[tp] < ends[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    yield tp.partition, record
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
