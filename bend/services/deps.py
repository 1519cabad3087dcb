"""What a use case works with: the settings, the read models' pool and the command producer
(the API's `ApiContext` is one; tests may pass their own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import asyncpg

from bend.kafka.position import Position
from bend.kafka.producer import RecordProducer
from bend.settings import Settings

__all__ = ["Deps", "PositionWaiter", "WatchingDeps"]


class Deps(Protocol):
    """The connections a use case needs."""

    @property
    def settings(self) -> Settings: ...

    @property
    def pool(self) -> asyncpg.Pool: ...

    @property
    def producer(self) -> RecordProducer: ...


class PositionWaiter(Protocol):
    """Waits until the read models have applied records (the API's ProjectionWatcher)."""

    async def wait_for(self, positions: Sequence[Position], timeout_s: float) -> None: ...


class WatchingDeps(Deps, Protocol):
    """The connections, and a way to wait for the read models to catch up."""

    @property
    def watcher(self) -> PositionWaiter: ...
