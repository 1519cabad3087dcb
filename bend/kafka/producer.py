"""An async producer of Bend records: encoded with the codec, keyed by `key_for`; gives positions.

aiokafka's default partitioner is murmur2 over the key bytes, like the Java client's and Faust's,
so a run's commands land on the partition the orchestrator owns for that run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from bend.contracts.codec import codec_for, prime
from bend.contracts.topics import key_for, topic_for
from bend.core.commands import Command
from bend.core.events import Event
from bend.kafka import clients
from bend.kafka.errors import KafkaUnavailable
from bend.kafka.position import Position
from bend.settings import Settings
from bend.tracing import record_headers

__all__ = ["RecordProducer"]


class RecordProducer:
    """Produces events and commands to their topics, acks=all and idempotent; start() before use."""

    def __init__(self, settings: Settings, *, linger_ms: int = 2,
                 request_timeout_ms: int | None = None) -> None:
        self.settings = settings
        self._codec = codec_for(settings)
        self._producer = clients.producer(
            settings.kafka,
            client_id=f"{settings.kafka.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms
            or int(settings.kafka.produce_timeout_s * 1000),
        )
        self._started = False

    async def start(self) -> None:
        """Connect to the cluster; raises KafkaUnavailable if it does not answer."""
        await prime(self.settings)  # a registry's ids, before the first send needs one
        try:
            await self._producer.start()
        except KafkaError as err:
            await self._producer.stop()
            raise await clients.unavailable(self.settings.kafka, f"cannot connect ({err})") \
                from err
        self._started = True

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        if self._started:
            self._started = False
            await self._producer.stop()

    async def __aenter__(self) -> RecordProducer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def send(self, record: Event | Command) -> Position:
        """Produce one record and wait for the broker's ack; its position in the log."""
        return (await self.send_many([record]))[0]

    async def send_many(self, records: Sequence[Event | Command]) -> list[Position]:
        """Produce records (each to its own topic, in order per key) and wait for every ack."""
        try:
            futures = [
                await self._producer.send(topic_for(r, self.settings), self._codec.encode(r),
                                          key=key_for(r), headers=record_headers(r))
                for r in records
            ]
            metadata = await asyncio.gather(*futures)
        except KafkaError as err:
            raise KafkaUnavailable(self.settings.kafka.bootstrap, f"produce failed ({err})") \
                from err
        return [Position(m.topic, m.partition, m.offset) for m in metadata]

    async def send_raw(self, topic: str, value: bytes, *, key: bytes | None = None,
                       headers: Sequence[tuple[str, bytes]] | None = None,
                       partition: int | None = None) -> Position:
        """Produce bytes as they are (a re-driven record) and wait for the ack; its position."""
        try:
            future = await self._producer.send(topic, value, key=key, partition=partition,
                                               headers=list(headers) if headers else None)
            m = await future
        except KafkaError as err:
            raise KafkaUnavailable(self.settings.kafka.bootstrap, f"produce failed ({err})") \
                from err
        return Position(m.topic, m.partition, m.offset)
