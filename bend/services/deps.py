"""What a use case works with: the settings, the read models' pool and the command producer
(the API's `ApiContext` is one; tests may pass their own)."""

from __future__ import annotations

from typing import Protocol

import asyncpg

from bend.kafka.producer import RecordProducer
from bend.settings import Settings

__all__ = ["Deps"]


class Deps(Protocol):
    """The connections a use case needs."""

    @property
    def settings(self) -> Settings: ...

    @property
    def pool(self) -> asyncpg.Pool: ...

    @property
    def producer(self) -> RecordProducer: ...
