"""Fresh partition metadata for named topics only.

A group-less aiokafka consumer tracks no topics, so its own refreshes (`force_metadata_update`,
`fetch_all_metadata`) ask for every topic of the cluster: on a shared cluster with thousands
of topics that answer costs milliseconds of CPU each time (the projector bench spent most of
its Python time there with 1,800 test topics on the local broker). Bend's readers ask for the
topics they read.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError

__all__ = ["partitions_of", "topic_partitions"]


async def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics` that exists now, from a metadata request for them alone;
    KafkaError if no broker answers."""
    names = sorted(set(topics))
    if not names:
        return []
    # Into the consumer's own view of the cluster, so that partitions it is then assigned have
    # their leaders known (these consumers read only the topics they asked for).
    client = consumer._client  # noqa: SLF001 - no public call asks for named topics
    cluster: ClusterMetadata = client.cluster
    if not await client._metadata_update(cluster, names):  # noqa: SLF001
        raise KafkaError(f"no broker answered a metadata request for {', '.join(names)}")
    return [TopicPartition(topic, p) for topic in names
            for p in sorted(cluster.partitions_for_topic(topic) or ())]


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """The partition numbers of one topic (empty if it does not exist)."""
    return [tp.partition for tp in await partitions_of(consumer, [topic])]
