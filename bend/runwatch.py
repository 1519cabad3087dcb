"""Watch runs straight from the run log on Kafka: for the demo, end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer

from bend.contracts.codec import codec_for
from bend.contracts.topics import topic_name
from bend.core.events import Event, RunCancelled, RunCompleted, RunFailed
from bend.kafka import clients
from bend.settings import Settings
from bend.kafka.metadata import partitions_of

__all__ = ["RunWatcher", "TERMINAL"]

TERMINAL = (RunCompleted, RunFailed, RunCancelled)


class RunWatcher:
    """Reads `run-events` from where the log ended at `start()`; collects events per run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topic_name("runs", settings)
        self._decode = codec_for(settings).decode
        self.events: dict[str, list[Event]] = defaultdict(list)
        self.received_at: dict[str, list[float]] = defaultdict(list)
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Open the consumer at the current end of every partition (call before starting runs)."""
        consumer = clients.consumer(self.settings.kafka,
                                    group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=10)
        await consumer.start()
        tps = await partitions_of(consumer, [self.topic])
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
        self._consumer = consumer

    async def stop(self) -> None:
        """Close the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> RunWatcher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def stream(self) -> AsyncIterator[Event]:
        """Every run event appended since `start()`, as it arrives.

        A fetched batch is recorded whole before any of it is yielded, so a caller that stops
        iterating part-way loses nothing from `events`.
        """
        assert self._consumer is not None, "call start() first"
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.perf_counter()
            fresh: list[Event] = []
            for records in batch.values():
                for record in records:
                    event = self._decode(record.value)
                    if isinstance(event, Event) and event.run_id:
                        self.events[event.run_id].append(event)
                        self.received_at[event.run_id].append(now)
                        fresh.append(event)
            for event in fresh:
                yield event

    async def wait_finished(self, run_ids: Iterable[str], timeout_s: float) -> dict[str, Event]:
        """Wait until every run has a terminal event; returns each run's terminal event."""
        pending = set(run_ids)
        done: dict[str, Event] = {}
        for run_id in list(pending):
            for event in self.events.get(run_id, ()):
                if isinstance(event, TERMINAL):
                    done[run_id] = event
                    pending.discard(run_id)

        async def consume() -> None:
            async for event in self.stream():
                if event.run_id in pending and isinstance(event, TERMINAL):
                    done[event.run_id] = event
                    pending.discard(event.run_id)
                    if not pending:
                        return

        if pending:
            try:
                await asyncio.wait_for(consume(), timeout=timeout_s)
            except TimeoutError:
                raise TimeoutError(
                    f"{len(pending)} run(s) unfinished after {timeout_s:.0f} s, "
                    f"e.g. {sorted(pending)[:3]}"
                ) from None
        return done
