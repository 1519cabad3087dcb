"""A run started and followed by an outside producer with plain confluent-kafka and the committed
`.avsc` files (tests/e2e/outside_client.py imports nothing from Bend), as
docs/outside-producers.md tells it: its records land where confluent-kafka's default CRC32
partitioner puts them, and every run completes with each step once. Real Kafka, orchestrator,
executor, projector and API (the API only registers the workflow and reads the result)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import pytest

from bend.server.testing import RunningApi
from bend.devstack.engine import Engine
from streams.routing import home_partition
from tests.e2e.outside_client import Schemas, follow_run, signal_run, start_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WORKFLOW: dict[str, Any] = {
    "name": "from_outside",
    "steps": [
        {"id": "greet", "type": "transform", "expression": "join(' ', ['hello', input.who])"},
        {"id": "tool", "type": "tool", "component": "noop@1",
         "inputs": {"text": "${steps.greet.output}"}},
    ],
    "output": "steps.greet.output",
}


async def test_runs_started_with_plain_confluent_kafka_complete_wherever_they_land(
        api: RunningApi, engine: Engine) -> None:
    r = await api.client.post("/api/workflows", json=WORKFLOW)
    workflow_id, token = r.json()["workflow_id"], r.json()["position"]["token"]
    await api.client.get(f"/api/workflows/{workflow_id}", params={"wait_for": token})
    await asyncio.sleep(1.0)  # the orchestrator's catalog follows the workflows topic
    kafka = engine.settings.kafka
    schemas = Schemas()
    runs = [start_run(kafka.bootstrap, kafka.topic_prefix, schemas, workflow_id,
                      {"who": f"outsider {i}"}) for i in range(8)]
    crc = [(zlib.crc32(run_id.encode()) & 0xFFFFFFFF) % kafka.default_partitions
           for run_id in runs]
    homes = [home_partition(run_id.encode(), kafka.default_partitions) for run_id in runs]
    assert any(c != h for c, h in zip(crc, homes, strict=False)), "no run id landed off its home partition"

    for i, run_id in enumerate(runs):
        events = await asyncio.to_thread(follow_run, kafka.bootstrap, kafka.topic_prefix,
                                         schemas, run_id)
        types = [e["envelope"]["event_type"] for e in events]
        assert types and types[-1] == "RunCompleted", types
        assert types.count("StepSucceeded") == 2, types  # each step once
        assert events[-1]["output"] == f'"hello outsider {i}"'


async def test_a_signal_from_plain_confluent_kafka_resumes_a_waiting_run(
        api: RunningApi, engine: Engine) -> None:
    waiting = {"name": "waits_outside", "steps": [
        {"id": "w", "type": "wait", "signal": "approved_upstream"}],
        "output": "steps.w.output.ticket"}
    r = await api.client.post("/api/workflows", json=waiting)
    workflow_id, token = r.json()["workflow_id"], r.json()["position"]["token"]
    await api.client.get(f"/api/workflows/{workflow_id}", params={"wait_for": token})
    await asyncio.sleep(1.0)  # the orchestrator's catalog follows the workflows topic
    kafka = engine.settings.kafka
    schemas = Schemas()
    run_id = start_run(kafka.bootstrap, kafka.topic_prefix, schemas, workflow_id, {})
    signal_run(kafka.bootstrap, kafka.topic_prefix, schemas, run_id, workflow_id,
               "approved_upstream", {"ticket": "T-7"})
    events = await asyncio.to_thread(follow_run, kafka.bootstrap, kafka.topic_prefix, schemas,
                                     run_id)
    types = [e["envelope"]["event_type"] for e in events]
    assert types and types[-1] == "RunCompleted", types
    assert "SignalReceived" in types and "SignalDelivered" in types
    assert events[-1]["output"] == '"T-7"'
