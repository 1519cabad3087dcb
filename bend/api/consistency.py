"""Read-your-writes: wait until the read models have applied a log position, woken by NOTIFY.

The projector notifies `bend_projection` with its schema when a batch commits; a watcher
holding one LISTEN connection wakes every waiter, which then checks `projection_offsets`.
Waiters also re-check every half second, so a lost notification only slows them down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg
import structlog

from bend.kafka.position import Position
from projections import checkpoint
from projections.checkpoint import CHANNEL
from projections.errors import ProjectionBehind

__all__ = ["ProjectionWatcher"]

log = structlog.get_logger(__name__)

_RECHECK_S = 0.5


class ProjectionWatcher:
    """Wakes waiters when the projector commits a batch into `schema`."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self._changed = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        """LISTEN on the projector's channel (best effort: waiters poll without it)."""
        try:
            self._conn = await self.pool.acquire()
            await self._conn.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError) as err:
            log.warning("projection_listen_failed", error=str(err))
            await self._release()

    async def stop(self) -> None:
        """Stop listening and give the connection back."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.remove_listener(CHANNEL, self._on_notify)
        await self._release()

    async def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == self.schema:
            self._changed.set()
            self._changed = asyncio.Event()  # waiters woken; the next change needs a new one

    async def changed(self, timeout_s: float) -> None:
        """Return at the next committed batch, or after `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def applied(self, position: Position) -> int | None:
        """The next offset the read models will apply in the position's partition."""
        return await checkpoint.next_offset(self.pool, position.topic, position.partition)

    async def wait_for(self, positions: Sequence[Position], timeout_s: float) -> None:
        """Return once every position is applied; ProjectionBehind after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        for position in positions:
            while True:
                next_offset = await self.applied(position)
                if next_offset is not None and next_offset > position.offset:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProjectionBehind(position.token, timeout_s, next_offset)
                await self.changed(min(left, _RECHECK_S))
