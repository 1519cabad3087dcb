"""Following the run log in a consumer group of one's own: each record handled in order, the
offsets committed after each batch (so a crash hands the batch out again: handlers are
idempotent). The notifier and the chainer follow it so."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bend.contracts.topics import topic_name
from bend.kafka import clients
from bend.settings import Settings

__all__ = ["follow_run_log"]


async def follow_run_log(settings: Settings, group_id: str,
                         handle: Callable[[bytes], Awaitable[None]],
                         ready: asyncio.Event | None = None) -> None:
    """Hand every run-log record to `handle`, until cancelled; `ready` is set once assigned."""
    consumer = clients.consumer(settings.kafka, topic_name("runs", settings), group_id=group_id,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            if ready is not None and consumer.assignment():
                ready.set()
            for records in batch.values():
                for record in records:
                    if record.value is not None:
                        await handle(record.value)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
