"""Kafka event triggers on the real stack: Avro records in each framing, failures recorded as
TriggerFailed, and replays from an offset that fire records once unless forced."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import fastavro
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro.schema import fingerprint, to_parsing_canonical_form

from bend.core.events import RunStarted, TriggerFailed, TriggerFired
from bend.devstack.engine import Engine, running_engine
from bend.devstack.workers import Workers
from bend.kafka.producer import RecordProducer
from bend.triggering import events as trigger_events
from tests.e2e.test_triggers_worker import ADMIN, _read, _register, _remove, _until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

READER = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "int"}, {"name": "kind", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}
# The producer's newer schema: one more field, which the trigger's reader schema leaves out.
WRITER = {**READER, "fields": [*READER["fields"], {"name": "note", "type": "string",
                                                   "default": ""}]}
AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str) -> Iterator[Engine]:
    with running_engine(executors=0, partitions=2) as engine:
        yield engine


@pytest.fixture
def triggers(engine: Engine) -> Iterator[Workers]:
    workers = Workers(engine.settings, env=dict(engine.env),
                      log_dir=engine.workers.log_dir or engine.settings.dev.state_dir / "logs")
    try:
        workers.start("triggers")
        yield workers
    finally:
        workers.stop()


@pytest.fixture
def registry() -> Iterator[str]:
    """A schema registry answering GET /schemas/ids/7 (the Confluent REST shape) on 127.0.0.1;
    Karapace and Confluent's registry are not on PyPI."""
    schemas = {7: json.dumps(WRITER)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            found = (schemas.get(int(parts[2])) if parts[:2] == ["schemas", "ids"]
                     and parts[2].isdigit() else None)
            status, body = ((200, {"schema": found}) if found else
                            (404, {"error_code": 40403, "message": "Schema not found"}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _avro(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


def _single_object(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema))
    mark = int(fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "little")
    return b"\xc3\x01" + mark + _avro(schema, value)


def _topic(engine: Engine, name: str) -> str:
    topic = f"{engine.settings.kafka.topic_prefix}.{name}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": engine.settings.kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    return topic


async def _produce(engine: Engine, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=engine.settings.kafka.bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def _of(engine: Engine, trigger_id: str, kind: type) -> list[Any]:
    return [e for e in await _read(engine, "triggers")
            if isinstance(e, kind) and e.trigger_id == trigger_id]


async def _at_least(engine: Engine, trigger_id: str, kind: type, n: int) -> list[Any]:
    async def check() -> list[Any]:
        found = await _of(engine, trigger_id, kind)
        return found if len(found) >= n else []
    return await _until(check, 25) or await _of(engine, trigger_id, kind)


async def test_an_avro_trigger_reads_each_framing_and_records_what_it_cannot_read(
        engine: Engine, triggers: Workers, registry: str) -> None:
    topic = _topic(engine, "avro-orders")
    workflow_id, trigger_id = await _register(engine, {
        "type": "kafka", "topic": topic, "format": "avro", "avro_schema": READER,
        "schema_registry_url": registry, "filter": "kind == 'order'",
        "input_mapping": "{id: id, at: at}"})
    await asyncio.sleep(3)  # let it subscribe (it starts where the trigger took effect)
    order = {"kind": "order", "at": AT, "note": "n"}
    await _produce(engine, topic, [
        b"\x00" + (7).to_bytes(4, "big") + _avro(WRITER, {"id": 1, **order}),  # registry
        _single_object(READER, {"id": 2, "kind": "order", "at": AT}),  # single-object
        _avro(READER, {"id": 3, "kind": "order", "at": AT})[:1],  # cut short: offset 2
        b"\x00" + (99).to_bytes(4, "big") + b"\x02",  # an id the registry does not know
        b"\x00" + (7).to_bytes(4, "big") + _avro(WRITER, {"id": 4, **order, "kind": "refund"}),
        b"\x00" + (7).to_bytes(4, "big") + _avro(WRITER, {"id": 5, **order}),
    ])
    fired = await _at_least(engine, trigger_id, TriggerFired, 3)
    failed = await _at_least(engine, trigger_id, TriggerFailed, 2)
    await _remove(engine, workflow_id, trigger_id)
    assert sorted(e.input["id"] for e in fired) == [1, 2, 5]
    assert {e.input["at"] for e in fired} == {"2026-03-01T09:30:00+00:00"}
    assert sorted(e.dedupe_key for e in fired) == [f"{topic}/0/{o}" for o in (0, 1, 5)]
    assert [(f.stage, f.source) for f in failed] == [("decode", f"{topic}/0/2"),
                                                     ("decode", f"{topic}/0/3")]
    assert "knows no schema id 99" in failed[1].error


async def test_a_replay_re_reads_from_an_offset_and_fires_records_again_only_when_forced(
        engine: Engine, triggers: Workers) -> None:
    topic = _topic(engine, "replayed")
    definition = {"type": "kafka", "topic": topic, "filter": "kind == 'order'"}
    workflow_id, trigger_id = await _register(engine, definition)
    row = {"trigger_id": trigger_id, "workflow_id": workflow_id, "tenant": "default",
           "trigger_type": "kafka"}
    await asyncio.sleep(3)
    await _produce(engine, topic, [json.dumps({"n": n, "kind": kind}).encode()
                                   for n, kind in enumerate(["order", "ping", "order"])])
    assert len(await _at_least(engine, trigger_id, TriggerFired, 2)) == 2

    async def send(event: Any) -> None:
        async with RecordProducer(engine.settings) as producer:
            await producer.send(event)

    now = datetime.now(timezone.utc)
    # Let pings through, then re-read from offset 0: only the ping is new.
    await send(trigger_events.updated(row, {**definition, "filter": "kind != null"}, True,
                                      "default", ADMIN, now))
    await send(trigger_events.replay_requested(row, "r1", partition=None, from_offset=0,
                                               from_time=None, force=False, principal=ADMIN,
                                               now=now))
    fired = await _at_least(engine, trigger_id, TriggerFired, 3)
    await asyncio.sleep(3)  # no more than the ping may follow
    assert sorted(e.dedupe_key for e in await _of(engine, trigger_id, TriggerFired)) == [
        f"{topic}/0/{o}" for o in (0, 1, 2)]
    # Forced, from offset 2 of partition 0: record 2 fires once more, as a new run.
    await send(trigger_events.replay_requested(row, "r2", partition=0, from_offset=2,
                                               from_time=None, force=True, principal=ADMIN,
                                               now=now))
    fired = await _at_least(engine, trigger_id, TriggerFired, 4)
    triggers.stop()  # a restart resumes the replay's group: nothing fires a second time
    triggers.processes.clear()
    triggers.start("triggers")
    await asyncio.sleep(6)
    fired = await _of(engine, trigger_id, TriggerFired)
    await _remove(engine, workflow_id, trigger_id)
    assert sorted(e.dedupe_key for e in fired) == [
        f"{topic}/0/0", f"{topic}/0/1", f"{topic}/0/2", f"{topic}/0/2#r2"]
    assert len({e.run_id for e in fired}) == 4


async def test_records_fired_before_the_window_fire_again_but_start_no_second_run(
        engine: Engine) -> None:
    """The worker remembers 2 fired keys here: a replay over 4 fired records writes TriggerFired
    again for the 2 it forgot, and the orchestrator refuses their StartRuns (same run ids)."""
    workers = Workers(engine.settings, env={**engine.env,
                                            "BEND_TRIGGERS__KAFKA_FIRED_WINDOW": "2"},
                      log_dir=engine.workers.log_dir or engine.settings.dev.state_dir / "logs")
    try:
        workers.start("triggers")
        topic = _topic(engine, "windowed")
        workflow_id, trigger_id = await _register(engine, {"type": "kafka", "topic": topic})
        row = {"trigger_id": trigger_id, "workflow_id": workflow_id, "tenant": "default",
               "trigger_type": "kafka"}
        await asyncio.sleep(3)
        await _produce(engine, topic, [json.dumps({"n": n}).encode() for n in range(4)])
        first = await _at_least(engine, trigger_id, TriggerFired, 4)
        async with RecordProducer(engine.settings) as producer:
            await producer.send(trigger_events.replay_requested(
                row, "w1", partition=None, from_offset=0, from_time=None, force=False,
                principal=ADMIN, now=datetime.now(timezone.utc)))
        fired = await _at_least(engine, trigger_id, TriggerFired, 6)
        await asyncio.sleep(3)  # records 2 and 3 are in the window: nothing more may follow
        fired = await _of(engine, trigger_id, TriggerFired)
        run_ids = {e.run_id for e in first}
        started = [e.run_id for e in await _read(engine, "runs")
                   if isinstance(e, RunStarted) and e.run_id in run_ids]
        await _remove(engine, workflow_id, trigger_id)
    finally:
        workers.stop()
    assert sorted(e.dedupe_key for e in fired) == sorted(
        [f"{topic}/0/{o}" for o in (0, 1, 2, 3)] + [f"{topic}/0/0", f"{topic}/0/1"])
    assert {e.run_id for e in fired} == run_ids and len(run_ids) == 4
    assert sorted(started) == sorted(run_ids)  # each run started once
