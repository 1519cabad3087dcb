"""The whole engine in schema-registry mode: the API, orchestrator and executor processes and the
projector all configured with `BEND_KAFKA__SCHEMA_REGISTRY_URL` (bend.devstack's registry on
127.0.0.1; Apicurio's jars are not all on Maven Central). Runs started through the API finish,
every record Bend writes is Confluent-framed and readable by a registry-aware client, nothing is
dead-lettered, and the read model has the runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.contracts import codec
from bend.contracts.codec import codec_for
from bend.contracts.topics import topic_name
from bend.core.definitions import parse_definition
from bend.core.events import RunCompleted, TriggerFired
from bend.devstack.engine import Engine, running_engine
from bend.devstack.schema_registry import SchemaRegistry, start_schema_registry
from bend.devstack.workers import Workers
from bend.kafka.fromstart import seek_to_start
from bend.kafka.producer import RecordProducer
from bend.replay.read import read_log
from bend.runwatch import RunWatcher
from bend.security.roles import Principal, Role
from bend.settings import Settings
from bend.triggering import events as triggering
from bend.triggering import records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PIPELINE: dict[str, Any] = {
    "name": "registered",
    "input_schema": {"type": "object", "required": ["who"]},
    "steps": [
        {"id": "greet", "type": "transform", "expression": "join(' ', ['hello', input.who])"},
        {"id": "poke", "type": "tool", "component": "noop@1", "inputs": {"n": "1"},
         "after": ["greet"]},
        {"id": "shout", "type": "transform",
         "mapping": {"text": "steps.greet.output", "who": "input.who"}, "after": ["poke"]},
    ],
}


@pytest.fixture(scope="module")
def registry() -> Iterator[SchemaRegistry]:
    served = start_schema_registry()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str, registry: SchemaRegistry) -> Iterator[Engine]:
    with running_engine(schema_registry_url=registry.url) as engine:
        yield engine


@pytest.fixture()
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    kafka = engine.settings.kafka
    settings = isolated_settings(engine.settings, prefix=kafka.topic_prefix,
                                 partitions=kafka.default_partitions)
    assert settings.kafka.schema_registry_url
    codec.configure(settings)  # this process (API, projector) in the engine's mode
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        codec.configure(None)
        await drop_isolated(settings, topics=False)  # the engine's workers still use them


async def _run(api: RunningApi, workflow: dict[str, Any], run_input: Any) -> str:
    r = await api.client.post(f"/api/workflows/{workflow['workflow_id']}/execute",
                              json={"input": run_input},
                              params={"wait_for": workflow["position"]["token"]})
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


async def _finished(api: RunningApi, run_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = await api.client.get(f"/api/executions/{run_id}")
        if r.status_code == 200 and r.json()["status"] in {"completed", "failed", "cancelled"}:
            return dict(r.json())
        assert time.monotonic() < deadline, f"run {run_id} did not finish: {r.text}"
        await asyncio.sleep(0.2)


async def _records(settings: Settings, kind: str) -> list[bytes]:
    """Every value on a topic of the settings, from its start to its current end."""
    topic = topic_name(kind, settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                        or ())]
        begins, ends = await seek_to_start(consumer, tps)
        values: list[bytes] = []
        pending = {tp for tp in tps if begins[tp] < ends[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                values += [r.value for r in records if r.offset < ends[tp]]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return values
    finally:
        await consumer.stop()


async def test_runs_started_through_the_api_finish_in_registry_mode(
        api: RunningApi, registry: SchemaRegistry) -> None:
    wf = (await api.client.post("/api/workflows", json=PIPELINE)).json()
    run_ids = [await _run(api, wf, {"who": who}) for who in ("ada", "grace", "edsger")]

    for run_id, who in zip(run_ids, ("ada", "grace", "edsger"), strict=True):
        run = await _finished(api, run_id)  # the read model, fed by the projector
        assert run["status"] == "completed", run
        steps = {s["step_id"]: s for s in run["steps"]}
        assert steps["greet"]["output"] == f"hello {who}"
        assert steps["poke"]["status"] == "succeeded"
        assert steps["shout"]["output"] == {"text": f"hello {who}", "who": who}

    settings = api.settings
    logged = await read_log(settings, run_ids=run_ids)
    assert {r.event.run_id for r in logged if r.event.event_type == "RunCompleted"} == \
        set(run_ids)
    for run_id in run_ids:
        events = (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]
        assert len(events) == sum(r.event.run_id == run_id for r in logged)

    # Every record Bend wrote is in the registry's framing: the API's, the orchestrator's
    # and the executor's alike, with ids the registry knows.
    for kind in ("workflows", "runs", "commands", "tasks"):
        values = await _records(settings, kind)
        assert values, kind
        framings = {(v[0], int.from_bytes(v[1:5], "big") in registry.state.schemas)
                    for v in values}
        assert framings == {(0, True)}, (kind, framings)
    assert "bend.events.RunCompleted" in registry.state.subjects
    assert await _records(settings, "dead_letters") == []

    # A user's registry-aware consumer reads the run log with nothing from Bend.
    read = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    last = next(r for r in reversed(logged) if r.event.event_type == "RunCompleted")
    value = read(last.raw, SerializationContext(last.topic, MessageField.VALUE))
    assert value["envelope"]["run_id"] == last.event.run_id


async def test_a_schedule_trigger_fires_and_its_run_completes_in_registry_mode(
        engine: Engine, registry: SchemaRegistry) -> None:
    settings, admin = engine.settings, Principal(subject="test", project="default",
                                                  role=Role.ADMIN)
    workflow_id, trigger_id = f"wf-{uuid.uuid4().hex[:8]}", f"tr-{uuid.uuid4().hex[:8]}"
    workers = Workers(settings, env=dict(engine.env),
                      log_dir=engine.workers.log_dir or settings.dev.state_dir / "logs")
    decode = codec_for(settings).decode
    try:
        workers.start("triggers")
        async with RunWatcher(settings) as watcher:
            now = datetime.now(timezone.utc)
            async with RecordProducer(settings) as producer:
                await producer.send(records.registered(parse_definition(PIPELINE), workflow_id,
                                                       "default", admin, now))
                await producer.send(triggering.registered(
                    trigger_id, {"type": "schedule", "schedule": {"interval_seconds": 2},
                                 "input": {"who": "cron"}}, workflow_id, 1, "default", admin,
                    now))
            deadline, fired = time.monotonic() + 30, []
            while not fired:
                assert time.monotonic() < deadline, "no TriggerFired within 30 s"
                await asyncio.sleep(0.5)
                fired = [e for e in map(decode, await _records(settings, "triggers"))
                         if isinstance(e, TriggerFired) and e.trigger_id == trigger_id]
            done = await watcher.wait_finished([fired[0].run_id], timeout_s=60)
            async with RecordProducer(settings) as producer:
                await producer.send(triggering.removed(
                    {"workflow_id": workflow_id, "trigger_id": trigger_id}, "default", admin,
                    datetime.now(timezone.utc)))
    finally:
        workers.stop()
    assert isinstance(done[fired[0].run_id], RunCompleted), done
    assert {v[0] for v in await _records(settings, "triggers")} == {0}
    assert await _records(settings, "dead_letters") == []
