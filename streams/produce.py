"""Producing from inside an agent: straight to Faust's producer, crashing the worker on a loss.

Faust's `Topic.send` wraps every record in futures and callbacks that cost more than the
record; agents here send already-encoded bytes, so they go to the app's producer directly.
A record the broker finally refuses must not be lost behind a committed offset: the worker
crashes instead, and the command is decided again after the restart. Every send returns its
delivery future, so a caller can hold a source record's offset until what it owes is written.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol, cast

import faust
import structlog

from streams.background import spawn

if TYPE_CHECKING:
    from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["Delivery", "Producer", "RecordSender"]

log = structlog.get_logger(__name__)

Delivery = asyncio.Future  # resolves when the broker has the record (acks=all), or fails


class RecordSender(Protocol):
    """What the orchestrator and executor need of a producer (a fake in unit tests)."""

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> Delivery[Any]:
        """Queue one record; returns its delivery future."""
        ...

    async def send_atomic(self, topic: str, partition: int,
                          records: list[tuple[bytes | None, bytes]]) -> list[Delivery[Any]]:
        """Queue `records` as one record batch for one partition; returns its delivery futures."""
        ...


class Producer:
    """Sends encoded records with the app's producer; a failed delivery crashes the app."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> Delivery[Any]:
        """Queue one record (and its trace headers); its delivery is checked when the broker
        answers."""
        # faust types it as an Awaitable; its aiokafka producer returns the delivery future.
        future = cast("Delivery[Any]", await self.app.producer.send(topic, key, value, partition,
                                                                   None, headers))
        future.add_done_callback(self._check)
        return future

    async def send_atomic(self, topic: str, partition: int,
                          records: list[tuple[bytes | None, bytes]]) -> list[Delivery[Any]]:
        """Append `records` to one partition as ONE record batch, which Kafka writes whole.

        A decision's events go together: a crash never leaves half a decision in the run log
        (its command is then decided again, all or nothing). Only a group larger than the
        producer's batch size is split, and that is logged.
        """
        app_producer = cast("faust_aiokafka.Producer", self.app.producer)  # the app's transport
        producer = app_producer._ensure_producer()  # noqa: SLF001 - aiokafka's batch API
        futures = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                log.warning("decision_split_across_batches", topic=topic, partition=partition,
                            records=len(records))
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        futures.append(await producer.send_batch(batch, topic, partition=partition))
        for future in futures:
            future.add_done_callback(self._check)
        return futures

    def _check(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("produce_failed", error=repr(exc))
            spawn(self.app.crash(exc), what="crash after a failed produce")
