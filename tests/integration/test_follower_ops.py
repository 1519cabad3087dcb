"""A run-log follower (the notifier's and chainer's base) on real Kafka and Postgres, with its
ops server scraped over HTTP on 127.0.0.1: ready once Kafka and Postgres answer and it holds
its group's partitions, every run event handed over once, and its group's lag falling to 0."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bench.projection_history import sample_history
from bend.contracts.topics import topic_for, topic_name
from bend.core.events import Event
from bend.kafka.producer import RecordProducer
from bend.server.testing import drop_isolated, isolated_settings
from bend.settings import OpsSettings, Settings, get_settings
from streams.follow import RunLogFollower, run_with_ops
from tests.ops_http import http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class _Counter(RunLogFollower):
    role = "counter"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.events: list[str] = []

    async def on_event(self, event: Event) -> None:
        self.events.append(event.event_id)


@pytest.fixture()
async def settings(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Settings]:
    ops = OpsSettings(host="127.0.0.1", port=0, lag_interval_s=0.2, check_timeout_s=5.0)
    isolated = isolated_settings(get_settings().model_copy(update={"ops": ops}), partitions=2)
    try:
        yield isolated
    finally:
        await drop_isolated(isolated)



def _lags(text: str, group: str) -> dict[str, float]:
    return {f"{s.labels['topic']}:{s.labels['partition']}": s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "bend_consumer_lag" and s.labels.get("group") == group}


async def test_a_follower_is_ready_with_its_partitions_and_reads_every_run_event_once(
        settings: Settings) -> None:
    history = sample_history(workflows=1, runs_per_workflow=3, steps=2, tag="follow")
    runs = topic_name("runs", settings)
    runs_topic = [e for e in history if isinstance(e, Event) and e.run_id
                  and topic_for(e, settings) == runs]
    async with RecordProducer(settings) as producer:
        await producer.send_many(history)

    follower = _Counter(settings)
    with capture_logs() as logs:
        task = asyncio.create_task(run_with_ops(follower))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if any(e["event"] == "ops_listening" for e in logs):
                break
    (listening,) = [e for e in logs if e["event"] == "ops_listening"]
    url = listening["url"]
    assert url.startswith("http://127.0.0.1:") and listening["role"] == "counter"
    try:
        deadline = time.monotonic() + 60
        while True:
            status, body = await asyncio.to_thread(http_get, f"{url}/readyz")
            _, text = await asyncio.to_thread(http_get, f"{url}/metrics")
            lags = _lags(text, follower.group_id)
            if (status == 200 and len(follower.events) >= len(runs_topic)
                    and len(lags) == 2 and set(lags.values()) == {0.0}):
                break
            assert time.monotonic() < deadline, (status, body, len(follower.events), lags)
            await asyncio.sleep(0.2)
        checks = json.loads(body)["checks"]
        assert {name for name, c in checks.items() if c["ok"]} == {
            "kafka", "postgres", "assignment"}, checks
        assert sorted(follower.events) == sorted(e.event_id for e in runs_topic)
        assert follower.assignment() == {(runs, 0), (runs, 1)}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with pytest.raises(urllib.error.URLError):  # the ops server stopped with its follower
        await asyncio.to_thread(http_get, f"{url}/livez")
