"""Group commit: each partition's decisions go out as one record batch per produce round trip.

aiokafka keeps one produce request in flight per broker, and a partition's next batch waits
until the previous one has been taken, so writing each decision as its own batch makes every
decision wait for the previous one's round trip. Instead, while a write is in flight, the
decisions made meanwhile are gathered per partition and, the moment the write returns, every
partition's group is handed to the producer at once (no await in between, so they share one
produce request): one batch per partition per round trip, no linger (a decision made while
nothing is in flight is written at once).

A batch is written whole or not at all, and the next round is only sent once the previous one
is acknowledged, so the log never holds a later decision without an earlier one. The commands
behind a group are acknowledged (their offsets may be committed) only once its batch and
every record sent with it are delivered. A failed write stops all writes and crashes the
worker: nothing more is acknowledged, and every uncommitted group is decided again after the
restart (decide is deterministic; redelivery is recognised).
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

    def chunks(self) -> list[list[list[tuple[bytes | None, bytes]]]]:
        """The group's decisions in batch-sized runs, cut only between decisions."""
        out: list[list[list[tuple[bytes | None, bytes]]]] = []
        size = MAX_BATCH_BYTES
        for records in self.decisions:
            grows = sum(len(k or b"") + len(v) for k, v in records)
            if size + grows > MAX_BATCH_BYTES and (not out or out[-1]):
                out.append([])
                size = 0
            out[-1].append(records)
            size += grows
        return out

    def batches(self) -> list[list[tuple[bytes | None, bytes]]]:
        """The group's records as batches, cut only between decisions."""
        return [[r for records in chunk for r in records] for chunk in self.chunks()]

    def then(self, later: _Group | None) -> _Group:
        """This group followed by `later` (what was queued after it), as one group."""
        if later is not None:
            self.decisions += later.decisions
            self.follow_ups += later.follow_ups
            self.acks += later.acks
            self.queued_at += later.queued_at
        return self


class GroupCommit:
    """Writes one topic's partitions round by round; acks each group once it is delivered."""

    def __init__(self, producer: RecordSender, topic: str,
                 on_failure: Callable[[BaseException], Awaitable[None]]) -> None:
        self.producer = producer
        self.topic = topic
        self.on_failure = on_failure
        self.batches = 0  # batches written, for the benchmark and logs
        self.failed: BaseException | None = None
        self._pending: dict[int, _Group] = {}
        self._in_flight: set[int] = set()  # partitions of the round being written
        self._flusher: asyncio.Task[None] | None = None
        self._round_end: asyncio.Future[None] | None = None

    def add(self, partition: int, records: Sequence[tuple[bytes | None, bytes]] = (),
            follow_up: FollowUp | None = None, ack: Ack | None = None) -> None:
        """Queue one decision's records, what it sends with them, and its command's ack.

        Written at once if nothing is in flight, else with the next round. A decision without
        records (a rejected command) is acked in its turn, after the decisions before it on
        its partition: an offset is never released ahead of an earlier one's write.
        """
        if self.failed is not None:
            return  # the worker is crashing: nothing more is written or acked
        group = self._pending.get(partition)
        if group is None:
            if not records and follow_up is None and partition not in self._in_flight:
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
        if self._flusher is None:
            # A fresh context: the flusher outlives this command, so it must not log (or
            # trace) under the run ids bound while the command was decided.
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush(), context=contextvars.Context())

    async def drain(self, partitions: set[int] | None = None) -> None:
        """Wait until the partitions' queued groups are written (or the writes failed)."""
        while self._flusher is not None and self.failed is None:
            busy = set(self._pending) | self._in_flight
            if partitions is not None and not busy & partitions:
                return
            if self._round_end is None:
                await asyncio.sleep(0)  # the flusher has not started its first round yet
            else:
                await asyncio.shield(self._round_end)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending and self.failed is None:
                self._round_end = loop.create_future()
                try:
                    await self._round()
                finally:
                    self._in_flight = set()
                    self._round_end.set_result(None)
        except Exception as exc:
            self.failed = exc
            log.error("group_commit_failed", topic=self.topic, error=repr(exc))
            await self.on_failure(exc)
        finally:
            self._flusher = None

    async def _round(self) -> None:
        """Send every partition's group, then what goes with them; ack once all is delivered."""
        groups, self._pending = self._pending, {}
        self._in_flight = set(groups)
        started = time.perf_counter()
        deliveries: list[Delivery[Any]] = []
        sent: list[_Group] = []
        for partition, group in groups.items():
            for queued_at in group.queued_at:
                PROFILE.add("queued", (started - queued_at) * 1000)
            chunks = group.chunks()
            if len(chunks) > 1:  # past one batch's size: the rest (and the acks) next round
                rest = _Group([d for chunk in chunks[1:] for d in chunk], group.follow_ups,
                              group.acks)
                self._pending[partition] = rest.then(self._pending.get(partition))
                group = _Group(chunks[0])
            if chunks:
                records = [r for records in chunks[0] for r in records]
                deliveries += await self.producer.send_atomic(self.topic, partition, records)
                self.batches += 1
            PROFILE.add("group_size", len(group.decisions))
            sent.append(group)
        # Tasks, timers and commands for other runs go in the same request as the batches.
        for group in sent:
            for follow_up in group.follow_ups:
                deliveries += await follow_up()
        if deliveries:
            await asyncio.gather(*deliveries)
        PROFILE.since("produce", started)
        PROFILE.add("round_partitions", len(groups))
        for group in sent:
            for ack in group.acks:
                ack()
