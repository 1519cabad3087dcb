"""The agent-tokens side channel read once per API process, shared by every stream.

Each `GET /api/executions/{id}/tokens` (and the run page's) used to open a Kafka consumer of
its own: a connection, a metadata request and a fetch loop per watcher. Now one consumer,
started when the first watcher comes and stopped `idle_s` after the last leaves, holds every
partition of the topic from its end and hands each fetched record to the watchers of its run
(records are keyed by run id). Text is best-effort: a watcher too slow to take its batches
loses the oldest, never holds the others up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from bend.contracts.topics import topic_name
from bend.kafka import clients
from bend.kafka.metadata import partitions_of
from bend.settings import Settings

__all__ = ["TokenFeed", "Watch"]

log = structlog.get_logger(__name__)

_FETCH_MS = 100
_QUEUE = 256  # batches a watcher may fall behind before its oldest are dropped


class Watch:
    """One watcher's batches of records of its run, in the order the feed fetched them."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._batches: asyncio.Queue[list[Any]] = asyncio.Queue(_QUEUE)
        self.dropped = 0

    def offer(self, records: list[Any]) -> None:
        """Add a batch of the run's records (by the feed), dropping the oldest if it is full."""
        if self._batches.full():
            self._batches.get_nowait()
            self.dropped += 1
        self._batches.put_nowait(records)

    async def next(self, timeout_s: float) -> list[Any]:
        """The records fetched since the last call, waiting up to `timeout_s` for some."""
        records: list[Any] = []
        if self._batches.empty():
            with contextlib.suppress(TimeoutError):
                records.extend(await asyncio.wait_for(self._batches.get(), timeout_s))
        while not self._batches.empty():
            records.extend(self._batches.get_nowait())
        return records


class TokenFeed:
    """`async with feed.watch(run_id) as watch:` the run's token records from now on, or None
    if the topic does not exist."""

    def __init__(self, settings: Settings, *, idle_s: float = 30.0) -> None:
        self.settings = settings
        self.topic = topic_name("agent_tokens", settings)
        self.idle_s = idle_s
        self.starts = 0  # consumers started so far (one while any watcher stays)
        self._watches: dict[bytes, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[bool] | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @contextlib.asynccontextmanager
    async def watch(self, run_id: str) -> AsyncIterator[Watch | None]:
        watch = Watch(run_id.encode())
        self._watches.setdefault(watch.key, set()).add(watch)
        try:
            yield watch if await self._ensure_started() else None
        finally:
            held = self._watches.get(watch.key)
            if held is not None:
                held.discard(watch)
                if not held:
                    del self._watches[watch.key]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _ensure_started(self) -> bool:
        """Start the consumer unless it runs; whether the topic exists (KafkaError if no broker
        answers)."""
        async with self._lock:
            if not self.running:
                self._started = asyncio.get_running_loop().create_future()
                self._task = asyncio.create_task(self._run(self._started), name="token-feed")
            assert self._started is not None
            started = self._started
        return await asyncio.shield(started)

    async def _run(self, started: asyncio.Future[bool]) -> None:
        consumer = clients.consumer(self.settings.kafka, enable_auto_commit=False,
                                    client_id=f"{self.settings.kafka.client_id}-tokens")
        try:
            await consumer.start()
            partitions = await partitions_of(consumer, [self.topic])
            if not partitions:
                started.set_result(False)
                return
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            self.starts += 1
            log.info("token_feed_started", topic=self.topic, partitions=len(partitions))
            started.set_result(True)
            await self._dispatch(consumer)
        except (KafkaError, OSError) as err:
            if not started.done():
                started.set_exception(err)
            else:
                log.warning("token_feed_failed", topic=self.topic, error=repr(err))
        finally:
            if not started.done():
                started.cancel()
            await consumer.stop()

    async def _dispatch(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        while True:
            fetched = await consumer.getmany(timeout_ms=_FETCH_MS, max_records=1000)
            by_key: dict[bytes, list[Any]] = {}
            for records in fetched.values():
                for record in records:
                    if record.key in self._watches:
                        by_key.setdefault(record.key, []).append(record)
            for key, records in by_key.items():
                for watch in self._watches.get(key, ()):
                    watch.offer(records)
            if self._watches:
                idle_since = None
            elif idle_since is None:
                idle_since = loop.time()
            elif loop.time() - idle_since >= self.idle_s:
                # In the same step as the check: a watcher that comes while this consumer
                # stops starts another.
                self._task = None
                log.info("token_feed_stopped", topic=self.topic, idle_s=self.idle_s)
                return
