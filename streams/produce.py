"""Producing from inside an agent: straight to Faust's producer, crashing the worker on a loss.

Faust's `Topic.send` wraps every record in futures and callbacks that cost more than the
record; agents here send already-encoded bytes, so they go to the app's producer directly.
A record the broker finally refuses must not be lost behind a committed offset: the worker
crashes instead, and the command is decided again after the restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import structlog

__all__ = ["Producer"]

log = structlog.get_logger(__name__)


class Producer:
    """Sends encoded records with the app's producer; a failed delivery crashes the app."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partition: int | None = None) -> None:
        """Queue one record; its delivery is checked when the broker answers."""
        future = await self.app.producer.send(topic, key, value, partition, None, None)
        future.add_done_callback(self._check)

    def _check(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("produce_failed", error=repr(exc))
            asyncio.ensure_future(self.app.crash(exc))
