"""The projector applies every record once even when a fetch overlaps a seek, or a seek on
assignment fails (it seeks again before applying anything).

aiokafka's `seek_to_beginning` is awaited: once the fetcher has reset the position, a fetch
under way can return records read from the new position before the seek returns. The
projector must not take such a batch for one fetched before the seek (and drop it: its records
would be lost, the position past them), nor apply a batch read from before a seek. This was
found by the 3-broker cluster test, where the live read model missed a partition's first
records while its offsets said it was caught up.

The consumer here is in memory and reproduces that order deterministically; Postgres is real.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition

from bench.projection_history import sample_history
from bend.contracts.codec import encode
from bend.contracts.topics import topic_for
from bend.settings import DatabaseSettings, Settings, get_settings
from projections.db import connect
from projections.migrate import migrate
from projections.project import Consumed, apply_batch
from projections.projector import Projector, SeekClock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TABLES = ("workflows", "workflow_versions", "runs", "run_events", "steps", "step_attempts",
          "timers", "audit", "dead_letters", "llm_usage", "projection_offsets")


@dataclass(frozen=True)
class _Message:
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 1_700_000_000_000


class RacingConsumer:
    """An in-memory consumer that assigns its partitions from a background task (as aiokafka's
    coordinator does) and whose reset to the beginning takes effect at once but returns only
    after `reset_takes_s`, so a fetch under way reads from the new position meanwhile."""

    def __init__(self, log: dict[TopicPartition, list[_Message]], reset_takes_s: float,
                 batch: int) -> None:
        self.log = log
        self.reset_takes_s = reset_takes_s
        self.batch = batch
        self.position: dict[TopicPartition, int] = {}
        self.listener: Any = None
        self._joining: asyncio.Task[None] | None = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        self._joining = asyncio.create_task(self._join())

    async def _join(self) -> None:
        await asyncio.sleep(0.05)  # the fetch loop is waiting by now
        await self.listener.on_partitions_assigned(list(self.log))

    async def stop(self) -> None:
        if self._joining is not None:
            self._joining.cancel()

    def assignment(self) -> set[TopicPartition]:
        return set(self.position) if self.position else set()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        for tp in partitions:
            self.position[tp] = 0
        await asyncio.sleep(self.reset_takes_s)
        return True

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None
                      ) -> dict[TopicPartition, list[_Message]]:
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        while True:
            out: dict[TopicPartition, list[_Message]] = {}
            room = min(max_records or self.batch, self.batch)
            for tp, at in sorted(self.position.items()):
                taken = self.log[tp][at:at + room]
                if taken:
                    out[tp] = taken
                    self.position[tp] = at + len(taken)
                    room -= len(taken)
                if room <= 0:
                    break
            if out or asyncio.get_running_loop().time() >= deadline:
                return out
            await asyncio.sleep(0.01)


class FailingSeekConsumer(RacingConsumer):
    """Its first two resets fail half-way, as a seek does when a rebalance takes a partition
    under it: on assignment (aiokafka only logs a listener's error) and when the projector
    seeks again; the partitions are left where the group would put them (their middle, standing
    for a committed or reset position)."""

    def __init__(self, log: dict[TopicPartition, list[_Message]], batch: int) -> None:
        super().__init__(log, 0.0, batch)
        self.failures = 2

    async def _join(self) -> None:
        await asyncio.sleep(0.05)
        try:
            await self.listener.on_partitions_assigned(list(self.log))
        except Exception:  # what aiokafka's coordinator does with a listener's error
            pass

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        if self.failures:
            self.failures -= 1
            for tp in self.log:
                self.position[tp] = len(self.log[tp]) // 2
            raise RuntimeError("No current assignment for partition (a rebalance under way)")
        return await super().seek_to_beginning(*partitions)


class _NoDeadLetters:
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, record: Any) -> None:
        raise AssertionError(f"nothing here should be dead-lettered: {record}")


class _Projector(Projector):
    def __init__(self, settings: Settings, consumer: RacingConsumer) -> None:
        super().__init__(settings, max_batch=50, poll_ms=20)
        self.fake = consumer

    def _new_consumer(self) -> Any:
        return self.fake

    def _new_dead_letters(self) -> Any:
        return _NoDeadLetters()


@pytest.fixture()
async def settings(database_url: str) -> AsyncIterator[Settings]:
    base = get_settings()
    schema = f"seeks{uuid.uuid4().hex[:8]}"
    yield base.model_copy(update={"database": DatabaseSettings(url=database_url,
                                                               schema_name=schema)})
    conn = await asyncpg.connect(database_url)
    try:
        for name in (schema, f"{schema}_reference"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def _log(settings: Settings) -> dict[TopicPartition, list[_Message]]:
    log: dict[TopicPartition, list[_Message]] = defaultdict(list)
    for record in sample_history(workflows=3, runs_per_workflow=8, steps=3, tag="seeks"):
        tp = TopicPartition(topic_for(record, settings), 0)
        log[tp].append(_Message(len(log[tp]), encode(record)))
    return dict(log)


async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")), key=repr)
            for t in TABLES}


@pytest.mark.parametrize("reset_takes_s", [0.0, 0.2, "fails"])
async def test_a_fetch_that_overlaps_a_seek_loses_nothing(settings: Settings,
                                                          reset_takes_s: float | str) -> None:
    log = _log(settings)
    total = sum(len(messages) for messages in log.values())
    consumer = (FailingSeekConsumer(log, batch=50) if reset_takes_s == "fails" else
                RacingConsumer(log, float(reset_takes_s), batch=50))
    projector = _Projector(settings, consumer)
    running = asyncio.create_task(projector.run())
    url, schema = settings.database.url or "", settings.database.schema_name
    try:
        conn = await _wait_connect(url, schema)
        try:
            for _ in range(400):
                assert not running.done(), running.exception()
                applied = await conn.fetchval(
                    "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets")
                if applied == total:
                    break
                await asyncio.sleep(0.05)
            live = await _snapshot(conn)
        finally:
            await conn.close()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    reference = await connect(url, f"{schema}_reference")
    try:
        await migrate(reference, f"{schema}_reference")
        records = [Consumed(tp.topic, tp.partition, m.offset, m.value, m.key, m.headers,
                            m.timestamp) for tp, messages in log.items() for m in messages]
        await apply_batch(reference, records, _decode(settings), f"{schema}_reference")
        expected = await _snapshot(reference)
    finally:
        await reference.close()
    for table in TABLES:
        assert live[table] == expected[table], f"{table}: the live projector lost records"
    assert len(live["run_events"]) > 100


def _decode(settings: Settings) -> Any:
    from bend.contracts.codec import codec_for
    return codec_for(settings).decode


async def _wait_connect(url: str, schema: str) -> asyncpg.Connection:
    for _ in range(100):
        conn = await connect(url, schema)
        if await conn.fetchval("SELECT to_regclass('projection_offsets')") is not None:
            return conn
        await conn.close()
        await asyncio.sleep(0.05)
    raise AssertionError("the projector never migrated its schema")


def test_the_seek_clock_calls_a_fetch_clean_only_if_no_seek_touched_it() -> None:
    clock = SeekClock()
    began = clock.now
    assert clock.clean(began, clock.now)
    clock.begin()
    assert not clock.clean(began, clock.now)  # a seek began during the fetch
    during = clock.now
    assert not clock.clean(during, clock.now)  # fetched wholly during a seek
    clock.end()
    assert not clock.clean(began, during) and not clock.clean(during, during)
    assert not clock.clean(began, began)  # fetched before a seek: its position is gone
    assert clock.clean(clock.now, clock.now)
