"""Live facts about a run's surroundings: consumer groups, offsets, topics, in-flight steps."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import TopicPartition as AioPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bend.contracts.codec import decode
from bend.core.kinds import EXECUTOR_NODE_TYPES
from bend.core.errors import BendError
from bend.core.events import CircuitStateChanged, DeadLettered
from bend.core.explain import CircuitFacts, DeadLetterFacts, ExecutorLoad, PartitionFacts
from bend.kafka import clients
from bend.kafka.errors import KafkaUnavailable
from bend.kafka.fromstart import read_to_end
from bend.settings import Settings
from projections.queries import live

__all__ = [
    "Raw", "circuits", "dead_letters", "executor_loads", "group_facts", "partition_count",
    "partition_of", "read_partitions",
]

_TIMEOUT_S = 10.0


def partition_of(run_id: str, partitions: int) -> int:
    """The partition a run's key lands on: murmur2 like aiokafka, Faust and the Java client."""
    hashed: int = murmur2(run_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def _admin(settings: Settings) -> AdminClient:
    return clients.confluent_admin(settings.kafka,
                                   {"client.id": f"{settings.kafka.client_id}-explain"})


def _wait(future: Any, settings: Settings, what: str) -> Any:
    try:
        return future.result(timeout=_TIMEOUT_S)
    except (KafkaException, TimeoutError) as exc:
        raise KafkaUnavailable(settings.kafka.bootstrap, f"{what} ({exc})") from exc


def partition_count(settings: Settings, topic: str) -> int:
    """How many partitions `topic` has (blocking: call it in a thread)."""
    try:
        meta = _admin(settings).list_topics(topic, timeout=_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaUnavailable(settings.kafka.bootstrap, f"no metadata ({exc})") from exc
    found = meta.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise KafkaUnavailable(settings.kafka.bootstrap, f"topic {topic} does not exist; "
                               "create the topics with `bend dev up` or the workers")
    return len(found.partitions)


def group_facts(settings: Settings, role: str, group: str, topic: str,
                partition: int) -> PartitionFacts:
    """Who in `group` is assigned `topic`/`partition` and the group's lag there (blocking)."""
    admin = _admin(settings)
    desc = _wait(admin.describe_consumer_groups([group], request_timeout=_TIMEOUT_S)[group],
                 settings, f"describe group {group}")
    members = tuple(m.member_id for m in desc.members
                    if any(a.topic == topic and a.partition == partition
                           for a in (m.assignment.topic_partitions if m.assignment else ())))
    committed = _committed(settings, group, topic, partition)
    # confluent_kafka leaves OffsetSpec's constructors unannotated.
    specs = {TopicPartition(topic, partition): OffsetSpec.latest()}  # type: ignore[no-untyped-call]
    end = _wait(next(iter(admin.list_offsets(specs).values())), settings,
                f"end offset of {topic}").offset
    if committed < 0:  # nothing committed yet: the group reads from the log's start
        specs = {TopicPartition(topic, partition):
                 OffsetSpec.earliest()}  # type: ignore[no-untyped-call]
        committed = _wait(next(iter(admin.list_offsets(specs).values())), settings,
                          f"start offset of {topic}").offset
    state = getattr(desc.state, "name", str(desc.state)).lower()
    return PartitionFacts(role=role, group=group, topic=topic, partition=partition,
                          members=members, lag=max(end - committed, 0), group_state=state)


def _committed(settings: Settings, group: str, topic: str, partition: int) -> int:
    """The group's committed offset there, -1 if none (blocking: runs its own event loop).

    Asked with aiokafka: librdkafka's ListConsumerGroupOffsets can abort the whole process when
    a broker dies under it (confluentinc/librdkafka#3663; it took an executor down when a
    broker of a 3-node cluster was killed), and this runs inside the API."""
    tp = AioPartition(topic, partition)

    async def ask() -> int:
        admin = clients.admin(settings.kafka,
                                    client_id=f"{settings.kafka.client_id}-explain",
                                    request_timeout_ms=int(_TIMEOUT_S * 1000))
        await admin.start()
        try:
            listed = await admin.list_consumer_group_offsets(group, partitions=[tp])
        finally:
            await admin.close()
        meta = listed.get(tp)
        return meta.offset if meta is not None else -1

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout=_TIMEOUT_S))
    except (TimeoutError, KafkaError) as exc:
        raise KafkaUnavailable(settings.kafka.bootstrap,
                               f"offsets of group {group} ({exc!r})") from exc


@dataclass(frozen=True, slots=True)
class Raw:
    """One record read back."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


async def read_partitions(settings: Settings, topic: str,
                          partitions: Iterable[int] | None = None) -> list[Raw]:
    """Every record of `topic` (or of its `partitions`) up to the end it has now."""
    return [Raw(partition, r.offset, r.key, r.value) async for partition, r in
            read_to_end(settings.kafka, topic, partitions)]


async def circuits(settings: Settings, topic: str) -> dict[str, CircuitFacts]:
    """Each target's latest recorded breaker state, from the circuits topic."""
    latest: dict[str, CircuitFacts] = {}
    for raw in await read_partitions(settings, topic):
        try:
            ev = decode(raw.value)
        except BendError:
            continue
        if not isinstance(ev, CircuitStateChanged):
            continue
        seen = latest.get(ev.target)
        if seen is None or ev.occurred_at >= seen.changed_at:
            latest[ev.target] = CircuitFacts(
                target=ev.target, state=ev.to_state, changed_at=ev.occurred_at,
                open_until=ev.open_until, worker_id=ev.worker_id,
                consecutive_failures=ev.consecutive_failures)
    return latest


async def dead_letters(settings: Settings, topic: str, run_id: str,
                       partitions: int) -> tuple[DeadLetterFacts, ...]:
    """Dead letters keyed by the run (they land on the run key's partition)."""
    key = run_id.encode()
    out = []
    for raw in await read_partitions(settings, topic, [partition_of(run_id, partitions)]):
        if raw.key != key:
            continue
        try:
            ev = decode(raw.value)
        except BendError:
            continue
        if isinstance(ev, DeadLettered):
            out.append(DeadLetterFacts(
                event_id=ev.event_id, source_topic=ev.source_topic,
                source_partition=ev.source_partition, source_offset=ev.source_offset,
                error_type=ev.error_type, reason=ev.reason, occurred_at=ev.occurred_at))
    return tuple(out)


async def executor_loads(pool: asyncpg.Pool, partition: int, partitions: int,
                         limit: int) -> tuple[ExecutorLoad, ...]:
    """In-flight attempts of each executor seen running steps of the run's partition.

    An executor process runs at most `worker.executor_concurrency` attempts at once over all
    its partitions; the read model's running steps (reported started, with the worker's id)
    say how many each one holds.
    """
    rows = await live.running_steps(pool, sorted(EXECUTOR_NODE_TYPES))
    held = Counter(r["worker_id"] for r in rows)
    owners = {r["worker_id"] for r in rows if partition_of(r["run_id"], partitions) == partition}
    return tuple(ExecutorLoad(worker_id=w, in_flight=held[w], limit=limit)
                 for w in sorted(owners))


async def in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking admin call off the event loop."""
    return await asyncio.to_thread(fn, *args)
