"""The orchestrator's run cache across rebalances: a partition revoked while it is rebuilt from
the log is not kept, and a later assignment rebuilds it from the log as it is then."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from bend.contracts.admin import ensure_topics
from bend.contracts.codec import encode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.settings import get_settings
from streams.runcache import RunCache

pytestmark = pytest.mark.integration

WORKFLOW = {"name": "one", "steps": [
    {"id": "t", "type": "tool", "component": "noop@1", "inputs": {"n": 1}}]}


class GatedCache(RunCache):
    """Holds a rebuild's result until the test opens the gate (a rebuild here takes ~5 ms)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.gate = asyncio.Event()

    async def _rebuild(self, partition: int):  # type: ignore[no-untyped-def]
        runs = await super()._rebuild(partition)
        await self.gate.wait()
        return runs


def _start_events(run_id: str) -> list[bytes]:
    from datetime import datetime, timezone

    definition = parse_definition(WORKFLOW)
    cmd = StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="one",
                   occurred_at=datetime.now(timezone.utc),
                   definition=definition_json(definition), input={})
    decision = decide(None, cmd, datetime.now(timezone.utc))
    assert isinstance(decision, Accepted)
    return [encode(ev) for ev in decision.events]


async def test_a_partition_revoked_while_rebuilt_is_rebuilt_again_on_its_next_assignment(
        kafka_bootstrap: str) -> None:
    base = get_settings()
    settings = base.model_copy(update={"kafka": base.kafka.model_copy(update={
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}", "default_partitions": 1})})
    ensure_topics(settings)
    topic = topic_name("runs", settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in _start_events("run-before"):
            await producer.send_and_wait(topic, value, key=b"run-before", partition=0)
        cache = GatedCache(settings.kafka, topic)
        loading = asyncio.ensure_future(cache.partition(0))
        await asyncio.sleep(0.05)
        assert not loading.done()
        cache.drop({0})  # revoked mid-rebuild; the new owner starts a run
        for value in _start_events("run-after"):
            await producer.send_and_wait(topic, value, key=b"run-after", partition=0)
        cache.gate.set()
        stale = await loading
        assert set(stale.open) == {"run-before"}
        assert 0 not in cache.owned(), "a revoked partition's rebuild must not be kept"
        fresh = await cache.partition(0)  # assigned again
        assert fresh is not stale and cache.owned()[0] is fresh
        assert {"run-before", "run-after"} <= set(fresh.open), set(fresh.open)
    finally:
        await producer.stop()
