"""Group commit: each partition's decisions go out as one record batch per produce round trip.

aiokafka keeps one produce request in flight per broker, and a partition's next batch waits
until the previous one has been taken, so writing each decision as its own batch makes every
decision wait for the previous one's round trip. Instead, while a partition's write is in
flight, the decisions made for it meanwhile are gathered and written together as the next
batch the moment the write returns: one batch per partition per round trip, no linger (an
idle partition's decision is written at once).

A batch is written whole or not at all, and the partition's next batch is only sent once the
previous one is acknowledged, so the log never holds a later decision without an earlier one.
The commands behind a group are acknowledged (their offsets may be committed) only once its
batch and every record sent with it are delivered. A failed write stops the partition's
writes and crashes the worker: nothing is acknowledged, and the whole uncommitted group is
decided again after the restart (decide is deterministic; redelivery is recognised).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from streams.acks import Ack
from streams.hops import PROFILE
from streams.produce import Delivery, RecordSender

__all__ = ["FollowUp", "GroupCommit", "MAX_BATCH_BYTES"]

log = structlog.get_logger(__name__)

FollowUp = Callable[[], Awaitable[list[Delivery[Any]]]]  # sends what a decision owes others

# A group is cut into several batches (at decision boundaries) past this many payload bytes,
# well under the producer's 1 MB batch size (streams/app.py), so no decision is ever split.
MAX_BATCH_BYTES = 512 * 1024


@dataclass(slots=True)
class _Group:
    """What is waiting for a partition's next write."""

    decisions: list[list[tuple[bytes | None, bytes]]] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    queued_at: list[float] = field(default_factory=list)  # perf_counter per decision

    def batches(self) -> list[list[tuple[bytes | None, bytes]]]:
        """The group's records as batches, cut only between decisions."""
        out: list[list[tuple[bytes | None, bytes]]] = []
        size = MAX_BATCH_BYTES
        for records in self.decisions:
            grows = sum(len(k or b"") + len(v) for k, v in records)
            if size + grows > MAX_BATCH_BYTES and (not out or out[-1]):
                out.append([])
                size = 0
            out[-1].extend(records)
            size += grows
        return [b for b in out if b]


class GroupCommit:
    """Writes one topic's partitions group by group; acks each group once it is delivered."""

    def __init__(self, producer: RecordSender, topic: str,
                 on_failure: Callable[[BaseException], Awaitable[None]]) -> None:
        self.producer = producer
        self.topic = topic
        self.on_failure = on_failure
        self.batches = 0  # batches written, for the benchmark and logs
        self.failed: BaseException | None = None
        self._pending: dict[int, _Group] = {}
        self._writing: dict[int, asyncio.Task[None]] = {}

    def add(self, partition: int, records: Sequence[tuple[bytes | None, bytes]] = (),
            follow_up: FollowUp | None = None, ack: Ack | None = None) -> None:
        """Queue one decision's records, what it sends with them, and its command's ack.

        Written at once if the partition has no write in flight, else with the next batch.
        A decision without records (a rejected command) is acked in its turn, after the
        decisions before it: an offset is never released ahead of an earlier one's write.
        """
        if self.failed is not None:
            return  # the worker is crashing: nothing more is written or acked
        group = self._pending.get(partition)
        if group is None:
            if not records and follow_up is None and partition not in self._writing:
                if ack is not None:
                    ack()  # nothing owed and nothing before it in flight
                return
            group = self._pending[partition] = _Group()
        if records:
            group.decisions.append(list(records))
            if PROFILE.enabled:
                group.queued_at.append(time.perf_counter())
        if follow_up is not None:
            group.follow_ups.append(follow_up)
        if ack is not None:
            group.acks.append(ack)
        if partition not in self._writing:
            # A fresh context: the writer outlives this command, so it must not log (or
            # trace) under the run ids bound while the command was decided.
            self._writing[partition] = asyncio.get_running_loop().create_task(
                self._write(partition), context=contextvars.Context())

    async def drain(self, partitions: set[int] | None = None) -> None:
        """Wait until the partitions' queued groups are written (or their writer failed)."""
        while True:
            tasks = [t for p, t in self._writing.items() if partitions is None or p in partitions]
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def _write(self, partition: int) -> None:
        group: _Group | None = None
        try:
            while (group := self._pending.pop(partition, None)) is not None:
                await self._write_group(partition, group)
        except Exception as exc:  # noqa: BLE001 - any failure loses a write: crash, never ack
            self.failed = exc
            log.error("group_commit_failed", topic=self.topic, partition=partition,
                      commands=len(group.acks) if group else 0, error=repr(exc))
            await self.on_failure(exc)
        finally:
            self._writing.pop(partition, None)

    async def _write_group(self, partition: int, group: _Group) -> None:
        deliveries: list[Delivery[Any]] = []
        started = time.perf_counter()
        for queued_at in group.queued_at:
            PROFILE.add("queued", (started - queued_at) * 1000)
        batches = group.batches()
        for i, batch in enumerate(batches):
            if i:  # the next batch only after the previous one is in the log
                await asyncio.gather(*deliveries)
            deliveries += await self.producer.send_atomic(self.topic, partition, batch)
            self.batches += 1
        # Tasks, timers and commands for other runs go in the same request as the batch.
        for follow_up in group.follow_ups:
            deliveries += await follow_up()
        if deliveries:
            await asyncio.gather(*deliveries)
        PROFILE.since("produce", started)
        PROFILE.add("group_size", len(group.decisions))
        for ack in group.acks:
            ack()
