"""Following the run log in a consumer group of one's own: each record handled in order, the
offsets committed after each batch (so a crash hands the batch out again: handlers are
idempotent). The notifier and the chainer are followers.

A follower decodes each record and hands its run events to `on_event`; what it needs of a
run's definition it keeps in a `RunMemo` while the run is open (else reads the run's row). Run
as a process (`serve`), it has an ops server: ready once Kafka answers, Postgres answers and it
holds partitions; its group's `bend_consumer_lag` is published as it reads.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel, ValidationError

from bend.contracts.codec import codec_for
from bend.contracts.topics import topic_name
from bend.core.errors import BendError
from bend.core.events import Event
from bend.kafka import clients
from bend.ops import process
from bend.ops.health import assignment_check, kafka_check, postgres_check
from bend.ops.metrics import consumer_lag, set_consumer_lag
from bend.settings import Settings
from projections.db import create_pool, database_url
from projections.migrate import migrate

__all__ = ["RunLogFollower", "RunMemo", "entries_of", "run_with_ops", "serve"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

RUN_ENDS = frozenset({"RunCompleted", "RunFailed", "RunCancelled"})


def entries_of(definition: Any, key: str, model: type[M]) -> tuple[M, ...]:
    """The `key` entries of a definition (JSON data) as `model`s; none if it names none or they
    do not validate (logged: the definition was validated when it was saved)."""
    raw = definition.get(key) if isinstance(definition, dict) else None
    if not raw:
        return ()
    try:
        return tuple(model.model_validate(entry) for entry in raw)
    except ValidationError as exc:
        log.warning("definition_entries_unreadable", key=key, error=str(exc)[:300])
        return ()


class RunMemo(Generic[T]):
    """What a follower keeps per open run, the `limit` most recently kept."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._runs: OrderedDict[str, T] = OrderedDict()

    def keep(self, run_id: str, value: T) -> None:
        """Keep `value` for `run_id`, dropping the least recently kept beyond the limit."""
        self._runs[run_id] = value
        self._runs.move_to_end(run_id)
        while len(self._runs) > self.limit:
            self._runs.popitem(last=False)

    def get(self, run_id: str) -> T | None:
        """What is kept for `run_id`, if anything."""
        return self._runs.get(run_id)

    def drop(self, run_id: str) -> None:
        """Forget `run_id` (it ended)."""
        self._runs.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._runs)


class RunLogFollower:
    """Follows the run log in group `<prefix>-<role>`; subclasses handle events in `on_event`
    and may hold resources for the run in `resources`. `await run()` until cancelled."""

    role: ClassVar[str]

    def __init__(self, settings: Settings, *, group_id: str | None = None) -> None:
        self.settings = settings
        self.group_id = group_id or f"{settings.kafka.topic_prefix}-{self.role}"
        self.read = 0  # run-log records handled since start
        self.ready = asyncio.Event()  # set once the consumer holds partitions
        self.pool: Any = None  # an asyncpg Pool onto the read model, while running
        self._decode = codec_for(settings).decode
        self._consumer: AIOKafkaConsumer | None = None
        self._lag_at = 0.0

    async def on_event(self, event: Event) -> None:
        """Handle one run event (a run id is set)."""
        raise NotImplementedError

    async def open(self) -> None:
        """Acquire what handling needs (called once the pool is open)."""

    async def close(self) -> None:
        """Release what `open` acquired."""

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The run-log partitions held now."""
        if self._consumer is None:
            return frozenset()
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def run(self) -> None:
        """Follow the run log and handle its events, until cancelled."""
        schema = self.settings.database.schema_name
        self.pool = pool = await create_pool(database_url(self.settings), schema,
                                             min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, schema)
            await self.open()
            try:
                await self._follow()
            finally:
                await self.close()
        finally:
            await pool.close()

    async def _follow(self) -> None:
        self._consumer = consumer = clients.consumer(
            self.settings.kafka, topic_name("runs", self.settings), group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                if consumer.assignment():
                    self.ready.set()
                for records in batch.values():
                    for record in records:
                        if record.value is not None:
                            await self.handle(record.value)
                if batch:
                    await consumer.commit()
                await self._publish_lag(consumer)
        finally:
            self._consumer = None
            await consumer.stop()

    async def handle(self, raw: bytes) -> None:
        """Decode one run-log record and hand a run event to `on_event`."""
        self.read += 1
        try:
            event = self._decode(raw)
        except BendError as exc:
            log.warning("follower_undecodable", role=self.role, error=exc.message)
            return
        if isinstance(event, Event) and event.run_id:
            await self.on_event(event)

    async def _publish_lag(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._lag_at < self.settings.ops.lag_interval_s:
            return
        self._lag_at = now
        lags = {}
        for tp in consumer.assignment():
            lag = consumer_lag(consumer.highwater(tp), await consumer.position(tp))
            if lag is not None:
                lags[(tp.topic, tp.partition)] = lag
        set_consumer_lag(self.group_id, lags)


async def run_with_ops(follower: RunLogFollower) -> None:
    """Run `follower` with its ops server and heartbeat, until cancelled."""
    settings, ops = follower.settings, follower.settings.ops
    checks = {"kafka": kafka_check(settings.kafka, ops.check_timeout_s),
              "postgres": postgres_check(database_url(settings), ops.check_timeout_s),
              "assignment": assignment_check(follower.group_id, follower.assignment)}
    await process.run_with_ops(follower.run, ops, follower.role, checks=checks)


def serve(make: Callable[[Settings], RunLogFollower], module: str, argv: list[str]) -> int:
    """`python -m <module> run`: the follower `make` builds, with its ops server, until
    SIGINT/SIGTERM."""
    from bend.log import configure_logging
    from bend.settings import get_settings

    if argv[:1] != ["run"]:
        print(f"usage: python -m {module} run", file=sys.stderr)
        return 2
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    try:
        asyncio.run(run_with_ops(make(settings)))
    except KeyboardInterrupt:
        pass
    return 0
