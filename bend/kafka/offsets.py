"""The log's end offsets per partition, for projection lag and readiness."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from bend.kafka import clients
from bend.kafka.errors import KafkaUnavailable
from bend.settings import Settings
from bend.kafka.metadata import partitions_of

__all__ = ["OffsetReader"]


class OffsetReader:
    """Reads end offsets through a group-less consumer that never fetches a record."""

    def __init__(self, settings: Settings, *, request_timeout_ms: int = 10_000) -> None:
        self.bootstrap = settings.kafka.bootstrap
        self._kafka = settings.kafka
        self._consumer = clients.consumer(
            settings.kafka,
            client_id=f"{settings.kafka.client_id}-offsets",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=request_timeout_ms,
        )
        self._started = False

    async def start(self) -> None:
        """Connect; raises KafkaUnavailable if the cluster does not answer."""
        try:
            await self._consumer.start()
        except KafkaError as err:
            await self._consumer.stop()
            raise await clients.unavailable(self._kafka, f"cannot connect ({err})") from err
        self._started = True

    async def stop(self) -> None:
        """Disconnect."""
        if self._started:
            self._started = False
            await self._consumer.stop()

    async def __aenter__(self) -> OffsetReader:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        """Every partition of `topics` that exists (fresh metadata)."""
        try:
            return await partitions_of(self._consumer, topics)
        except KafkaError as err:
            raise KafkaUnavailable(self.bootstrap, f"no metadata ({err})") from err

    async def bounds(self, topics: Iterable[str]) -> dict[tuple[str, int], tuple[int, int]]:
        """(topic, partition) -> (first offset still in the log, offset the next record gets)."""
        partitions = await self.partitions(topics)
        if not partitions:
            return {}
        try:
            starts = await self._consumer.beginning_offsets(partitions)
            ends = await self._consumer.end_offsets(partitions)
        except KafkaError as err:
            raise KafkaUnavailable(self.bootstrap, f"no offsets ({err})") from err
        return {(tp.topic, tp.partition): (starts[tp], ends[tp]) for tp in partitions}
