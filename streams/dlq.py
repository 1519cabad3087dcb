"""The dead-letter topic: records no processor could handle, kept whole with the reason."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import structlog

from bend.contracts.codec import encode
from bend.core.events import DeadLettered
from bend.kafka.headers import headers_json
from bend.ops.metrics import DEAD_LETTERS
from streams.produce import Delivery, RecordSender

__all__ = ["DeadLetters", "headers_json"]

log = structlog.get_logger(__name__)


class DeadLetters:
    """Sends `DeadLettered` events for records that failed, so they can be re-driven."""

    def __init__(self, producer: RecordSender, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.count = 0

    async def send(self, source_topic: str, partition: int, offset: int,
                   key: bytes | None, payload: bytes, error: BaseException,
                   headers: Any = None) -> Delivery[Any]:
        """Dead-letter one record (its key, bytes and headers) with the error that stopped it."""
        self.count += 1
        event = DeadLettered(
            event_id=str(uuid.uuid4()), workflow_id="", occurred_at=datetime.now(timezone.utc),
            source_topic=source_topic, source_partition=partition, source_offset=offset,
            error_type=type(error).__name__, reason=str(error)[:2000], key=key, payload=payload,
            headers=headers_json(headers),
        )
        DEAD_LETTERS.labels(source_topic, event.error_type).inc()
        log.error("dead_lettered", source_topic=source_topic, partition=partition,
                  error_type=event.error_type, reason=event.reason, event_id=event.event_id)
        return await self.producer.send(self.topic, key, encode(event))
