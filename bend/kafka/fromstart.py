"""Reading a log from its start: where every reader of a whole partition begins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bend.kafka import clients
from bend.kafka.metadata import topic_partitions
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
                      *, fetch_bytes: int = 1024 * 1024,
                      start_at: Mapping[int, int] | None = None,
                      begins_seen: dict[int, int] | None = None,
                      ) -> AsyncIterator[tuple[int, Any]]:
    """(partition, record) of every record of `topic` (or of its `partitions`) from its start
    (or from `start_at[partition]` where that is later) up to the end it has when reading
    begins; KafkaUnavailable if the broker does not answer. `begins_seen` is given each
    partition's first offset in the log (what retention has left)."""
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
            partitions = await topic_partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return
        begins, ends = await seek_to_start(consumer, tps)
        if begins_seen is not None:
            begins_seen.update({tp.partition: begins[tp] for tp in tps})
        for tp in tps:
            later = (start_at or {}).get(tp.partition)
            if later is not None and later > begins[tp]:
                begins[tp] = min(later, ends[tp])
                consumer.seek(tp, begins[tp])
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
