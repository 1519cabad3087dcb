"""The API reads the agent-tokens side channel with one consumer, however many watch: each
watcher gets its own run's records from when it came, and the consumer stops once nobody has
watched for `idle_s` (the next watcher starts another). Real Kafka."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from bend.api.token_feed import TokenFeed, Watch
from bend.contracts.admin import ensure_topics
from bend.kafka import clients
from bend.settings import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def settings(kafka_bootstrap: str) -> Settings:
    base = get_settings()
    kafka = base.kafka.model_copy(update={"topic_prefix": f"feed{uuid.uuid4().hex[:8]}",
                                          "default_partitions": 3})
    settings = base.model_copy(update={"kafka": kafka})
    ensure_topics(settings)
    return settings


async def _send(settings: Settings, topic: str, *pieces: tuple[str, str]) -> None:
    producer = clients.producer(settings.kafka)
    await producer.start()
    try:
        for run_id, text in pieces:
            await producer.send_and_wait(topic, json.dumps({"text": text}).encode(),
                                         key=run_id.encode())
    finally:
        await producer.stop()


async def _texts(watch: Watch, want: int) -> list[str]:
    texts: list[str] = []
    async with asyncio.timeout(20):
        while len(texts) < want:
            texts += [json.loads(r.value)["text"] for r in await watch.next(0.5)]
    return texts


async def test_watchers_share_one_consumer_and_get_their_own_runs_records(
        settings: Settings) -> None:
    feed = TokenFeed(settings, idle_s=0.5)
    try:
        async with feed.watch("run-a") as a, feed.watch("run-b") as b:
            assert a is not None and b is not None
            await _send(settings, feed.topic, ("run-a", "a1"), ("run-b", "b1"),
                        ("run-c", "c1"), ("run-a", "a2"))
            assert await _texts(a, 2) == ["a1", "a2"]
            assert await _texts(b, 1) == ["b1"]
            assert feed.starts == 1
        async with asyncio.timeout(10):  # nobody watches: the consumer stops
            while feed.running:
                await asyncio.sleep(0.1)
        await _send(settings, feed.topic, ("run-a", "missed"))
        async with feed.watch("run-a") as again:  # from now on: not what came meanwhile
            assert again is not None
            assert feed.starts == 2
            await _send(settings, feed.topic, ("run-a", "a3"))
            assert await _texts(again, 1) == ["a3"]
    finally:
        await feed.close()


async def test_a_missing_topic_is_said_not_waited_on(settings: Settings) -> None:
    other = settings.kafka.model_copy(update={"topic_prefix": f"none{uuid.uuid4().hex[:8]}"})
    feed = TokenFeed(settings.model_copy(update={"kafka": other}))
    try:
        async with feed.watch("run-a") as watch:
            assert watch is None
        assert feed.starts == 0
    finally:
        await feed.close()
