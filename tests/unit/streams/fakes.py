"""In-memory stand-ins for the orchestrator's and executor's ports: app, producer, run cache."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from bend.contracts.codec import decode
from bend.core.commands import StartRun
from bend.settings import Settings
from streams.runcache import PartitionRuns


class FakeApp:
    """The little of a faust.App the orchestrator and executor use outside `register`."""

    def __init__(self) -> None:
        self.crashed: list[BaseException] = []

    def topic(self, name: str) -> Any:
        """A topic that only knows its name."""
        return SimpleNamespace(get_topic_name=lambda: name)

    async def crash(self, reason: BaseException) -> None:
        """Record the crash instead of stopping anything."""
        self.crashed.append(reason)


@dataclass
class Sent:
    """One record batch or record handed to the producer, with its delivery future."""

    topic: str
    partition: int | None
    records: list[tuple[bytes | None, bytes]]
    delivery: asyncio.Future[Any]

    def decoded(self) -> list[Any]:
        """The batch's records, decoded."""
        return [decode(value) for _, value in self.records]


@dataclass
class FakeProducer:
    """Records every batch and record; deliveries resolve when the test says (or at once)."""

    auto_deliver: bool = False  # single records (tasks, commands) delivered at once
    batches: list[Sent] = field(default_factory=list)
    records: list[Sent] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        """Record one record; its delivery is pending unless `auto_deliver`."""
        sent = Sent(topic, partition, [(key, value)], asyncio.get_running_loop().create_future())
        if self.auto_deliver:
            sent.delivery.set_result(None)
        self.records.append(sent)
        return sent.delivery

    async def send_atomic(self, topic: str, partition: int,
                          records: list[tuple[bytes | None, bytes]]) -> list[asyncio.Future[Any]]:
        """Record one batch; its delivery is pending until `deliver` or `fail`."""
        sent = Sent(topic, partition, list(records), asyncio.get_running_loop().create_future())
        self.batches.append(sent)
        return [sent.delivery]

    def deliver(self, index: int = -1) -> None:
        """Acknowledge a batch, as the broker would."""
        self.batches[index].delivery.set_result(None)

    def fail(self, index: int, error: BaseException) -> None:
        """Refuse a batch, as the broker finally would."""
        self.batches[index].delivery.set_exception(error)


class FakeRunCache:
    """Partitions of runs kept in memory, rebuilt from nothing."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionRuns] = {}

    def owned(self) -> dict[int, PartitionRuns]:
        """Every partition used so far."""
        return self.partitions

    async def partition(self, partition: int) -> PartitionRuns:
        """The partition's runs (empty at first)."""
        return self.partitions.setdefault(partition, PartitionRuns(partition))

    def drop(self, partitions: set[int]) -> None:
        """Forget the partitions."""
        for p in partitions:
            self.partitions.pop(p, None)


class FakeCatalog:
    """A catalog that knows no workflow: StartRuns keep what they carry."""

    async def complete(self, cmd: StartRun) -> StartRun:
        """`cmd` unchanged."""
        return cmd

    async def follow(self) -> None:
        """Nothing to follow."""


def settings() -> Settings:
    """Default settings under a fixed topic prefix."""
    base = Settings()
    return base.model_copy(update={"kafka": base.kafka.model_copy(
        update={"topic_prefix": "unit"})})


async def settle() -> None:
    """Let every ready task run (writers, callbacks) until nothing moves."""
    for _ in range(20):
        await asyncio.sleep(0)
