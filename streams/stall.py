"""Stalled partitions: a worker that is idle while a partition it holds has records unread.

Faust can come out of a rebalance holding a partition it never fetches again (or whose
records it drops as already read): the records wait forever, and so do their runs. An idle
worker (nothing in flight) whose group's committed offset on an assigned partition has not
moved for `stall_after_s` while the partition's log goes further is stalled there. The watch
logs what the consumer holds for that partition and, if its fetch position is short of the end
(records it never read), resumes it and moves its position back to the committed offset,
which makes Faust fetch and deliver the records again (each handler is idempotent).

Offsets are asked with aiokafka, never librdkafka: librdkafka's ListConsumerGroupOffsets
aborts the whole process (`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`,
confluentinc/librdkafka#3663) when a broker dies under it, which took an executor down when a
broker of a 3-node cluster was killed (tests/integration/test_cluster.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bend.kafka import clients
from bend.ops.metrics import STALLED_PARTITIONS
from bend.settings import KafkaSettings

__all__ = ["StallWatch"]

log = structlog.get_logger(__name__)

_TIMEOUT_S = 10.0


@dataclass(slots=True)
class _Seen:
    committed: int
    since: float


class StallWatch:
    """Checks the partitions of `topic` a worker holds; repairs those it finds stalled."""

    def __init__(self, app: faust.App, group: str, topic: str, busy: Callable[[], int],
                 kafka: KafkaSettings, stall_after_s: float) -> None:
        self.app = app
        self.group = group
        self.topic = topic
        self.busy = busy
        self.stall_after_s = stall_after_s
        self.repaired = 0
        self.kafka = kafka
        self._admin: AIOKafkaAdminClient | None = None
        self._ends: AIOKafkaConsumer | None = None
        self._seen: dict[int, _Seen] = {}

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """The admin client and offsets consumer, started on first use (they need the loop)."""
        if self._admin is None or self._ends is None:
            client_id = f"{self.group}-stallwatch"
            admin = clients.admin(self.kafka, client_id=client_id,
                                        request_timeout_ms=int(_TIMEOUT_S * 1000))
            ends = clients.consumer(self.kafka, client_id=client_id,
                                    group_id=None, enable_auto_commit=False,
                                    request_timeout_ms=int(_TIMEOUT_S * 1000))
            await admin.start()
            try:
                await ends.start()
            except BaseException:
                await admin.close()
                raise
            self._admin, self._ends = admin, ends
        return self._admin, self._ends

    async def close(self) -> None:
        """Close the clients (the worker's exit does it too)."""
        if self._admin is not None:
            await self._admin.close()
        if self._ends is not None:
            await self._ends.stop()
        self._admin = self._ends = None

    async def check(self) -> list[int]:
        """One look: the partitions found stalled (and repaired) this time."""
        held = {tp.partition: tp for tp in self.app.consumer.assignment()
                if tp.topic == self.topic}
        if not held or self.busy():
            self._seen.clear()
            return []
        offsets = await asyncio.wait_for(self._offsets(sorted(held)), timeout=_TIMEOUT_S)
        now = time.monotonic()
        stalled = []
        for partition, (committed, end) in offsets.items():
            seen = self._seen.get(partition)
            if committed >= end:
                self._seen.pop(partition, None)
            elif seen is None or seen.committed != committed:
                self._seen[partition] = _Seen(committed, now)
            elif now - seen.since >= self.stall_after_s and await self._unfetched(
                    held[partition], end):
                stalled.append(partition)
                await self._repair(held[partition], committed, end)
                self._seen.pop(partition, None)
        for partition in set(self._seen) - set(offsets):
            del self._seen[partition]
        return stalled

    async def _unfetched(self, tp: Any, end: int) -> bool:
        """Whether the consumer's fetch position is short of the end: records it never read.

        Records fetched and handled whose offset Faust did not commit (its ack list can hold
        duplicates and creep) are no stall: reading them again would run their steps again.
        """
        position = await self.app.consumer.position(tp)
        return position is not None and position < end

    async def _offsets(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """Committed and end offset of each partition that has a committed offset."""
        admin, ends_consumer = await self._clients()
        tps = [TopicPartition(self.topic, p) for p in partitions]
        listed = await admin.list_consumer_group_offsets(self.group, partitions=tps)
        ends = await ends_consumer.end_offsets(tps)
        result = {}
        for tp in tps:
            meta = listed.get(tp)
            start = meta.offset if meta is not None else -1
            if start >= 0:  # nothing committed yet: Faust reads from the start, nothing to judge
                result[tp.partition] = (start, ends[tp])
        return result

    async def _repair(self, tp: Any, committed: int, end: int) -> None:
        consumer: Any = self.app.consumer
        facts: dict[str, Any] = {
            "paused": tp in getattr(consumer, "_paused_partitions", ()),
            "active": tp in (getattr(consumer, "_active_partitions", None) or ()),
            "read_offset": getattr(consumer, "_read_offset", {}).get(tp),
            "faust_committed": getattr(consumer, "_committed_offset", {}).get(tp),
            "acked_head": list(getattr(consumer, "_acked", {}).get(tp, []))[:5],
            "flow_active": getattr(consumer, "flow_active", None),
        }
        try:
            facts["position"] = await consumer.position(tp)
        except Exception as exc:
            facts["position"] = repr(exc)
        STALLED_PARTITIONS.labels(self.group, self.topic).inc()
        log.error("partition_stalled", topic=self.topic, partition=tp.partition,
                  committed=committed, end=end, idle_for_s=self.stall_after_s, **facts)
        consumer.resume_partitions({tp})
        await consumer.seek(tp, committed)  # also resets Faust's read offset for it
        self.repaired += 1
