"""Reading a log from its start: where every reader of a whole partition begins."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["seek_to_start"]


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
