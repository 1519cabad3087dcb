"""The example research workflow, end to end on the real stack: Kafka, worker processes, model."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timezone
from collections.abc import Iterator

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI, Response

from bend.cli.demo import EXAMPLE
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, CircuitStateChanged, DeadLettered, RunCancelled,
    RunFailed, StepFailed, RunCompleted, StepCancelled,
    StepScheduled, StepSkipped, StepSucceeded, TimerFired, TimerSet, WorkflowRegistered,
)
from bend.contracts.codec import decode
from bend.contracts.topics import topic_name
from bend.core.definitions import definition_json, parse_definition
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from bend.devstack.engine import Engine, running_engine
from bend.devstack.llm_server import serve_in_background

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str) -> Iterator[Engine]:
    with running_engine() as engine:
        yield engine


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


async def _run(engine: Engine, definition: dict, input: dict, timeout_s: float = 60) -> tuple:
    start = engine.start_run(definition, input)
    async with RunWatcher(engine.settings) as watcher, RecordProducer(engine.settings) as producer:
        await producer.send(start)
        done = await watcher.wait_finished([start.run_id], timeout_s=timeout_s)
    return done[start.run_id], watcher.events[start.run_id]


async def test_the_example_research_workflow_completes_with_a_report(engine: Engine) -> None:
    calls_before = engine.llm.state.requests
    final, events = await _run(engine, _example(), {"topic": "durable execution",
                                                    "llm_base_url": engine.llm.base_url})
    assert isinstance(final, RunCompleted), final
    succeeded = Counter(e.step_id for e in events if isinstance(e, StepSucceeded))
    assert set(succeeded) == {"plan", "search", "found", "read_pages", "read_first",
                              "read_second", "pause", "research", "report"}
    assert all(n == 1 for n in succeeded.values()), succeeded
    assert [e.step_id for e in events if isinstance(e, StepSkipped)] == ["nothing_found"]
    assert final.output["topic"] == "durable execution"
    assert final.output["summary"]
    assert final.output["sources"]
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1))
    llm_calls = [e for e in events if isinstance(e, AgentLlmCallRecorded)]
    calls = [e for e in events if isinstance(e, (AgentLlmCallRecorded, AgentToolCallRecorded))]
    assert llm_calls and [c.call_index for c in calls] == list(range(len(calls)))
    assert engine.llm.state.requests - calls_before == len(llm_calls)
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in llm_calls)
    assert any(isinstance(e, AgentToolCallRecorded) for e in events)


async def test_the_delay_is_a_durable_timer_that_waits_its_duration(engine: Engine) -> None:
    final, events = await _run(engine, _example(), {"topic": "timers",
                                                    "llm_base_url": engine.llm.base_url})
    assert isinstance(final, RunCompleted)
    timer = next(e for e in events if isinstance(e, TimerSet) and e.purpose == "delay")
    fired = next(e for e in events if isinstance(e, TimerFired) and e.timer_id == timer.timer_id)
    assert (fired.occurred_at - timer.occurred_at).total_seconds() >= 2.0


async def test_a_run_waiting_in_a_delay_can_be_cancelled(engine: Engine) -> None:
    definition = {"name": "sleepy", "steps": [
        {"id": "nap", "type": "delay", "duration": "1h"},
        {"id": "after_nap", "type": "transform", "expression": "'woke'", "after": ["nap"]},
    ]}
    start = engine.start_run(definition, {})
    async with RunWatcher(engine.settings) as watcher, RecordProducer(engine.settings) as producer:
        await producer.send(start)
        async for event in watcher.stream():
            if isinstance(event, TimerSet) and event.run_id == start.run_id:
                break
        await producer.send(engine.cancel_run(start, "no longer needed"))
        done = await watcher.wait_finished([start.run_id], timeout_s=30)
    assert isinstance(done[start.run_id], RunCancelled)
    events = watcher.events[start.run_id]
    assert any(isinstance(e, StepCancelled) and e.step_id == "nap" for e in events)
    assert not any(isinstance(e, StepScheduled) and e.step_id == "after_nap" for e in events)


async def test_a_subworkflow_step_runs_the_registered_child_workflow_and_takes_its_output(
        engine: Engine) -> None:
    child = {"name": "shout", "steps": [
        {"id": "loud", "type": "transform", "expression": "join('', [input.word, '!'])"}],
        "output": "steps.loud.output"}
    child_id = f"shout-{uuid.uuid4().hex[:6]}"
    registered = WorkflowRegistered(
        event_id=str(uuid.uuid4()), workflow_id=child_id, workflow_version=1, seq=1,
        occurred_at=datetime.now(timezone.utc), name="shout",
        definition=definition_json(parse_definition(child)))
    parent = {"name": "parent", "steps": [
        {"id": "call", "type": "subworkflow", "workflow": child_id,
         "input": {"word": "${input.word}"}},
        {"id": "done", "type": "transform", "expression": "steps.call.output"}],
        "output": "steps.done.output"}
    async with RecordProducer(engine.settings) as producer:
        await producer.send(registered)
    final, events = await _run(engine, parent, {"word": "hello"})
    assert isinstance(final, RunCompleted), final
    assert final.output == "hello!"


async def test_a_record_no_one_can_decode_is_dead_lettered_whole_with_the_reason(
        engine: Engine) -> None:
    garbage = b"\xc3\x01not-an-avro-body"
    topic = topic_name("commands", engine.settings)
    dead_letters = topic_name("dead_letters", engine.settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=engine.settings.kafka.bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(dead_letters, p)
               for p in consumer.partitions_for_topic(dead_letters) or ()]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
        producer = AIOKafkaProducer(bootstrap_servers=engine.settings.kafka.bootstrap)
        await producer.start()
        try:
            meta = await producer.send_and_wait(topic, garbage, key=b"some-run")
        finally:
            await producer.stop()
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    letter = decode(record.value)
    assert isinstance(letter, DeadLettered)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == \
        (topic, meta.partition, meta.offset)
    assert letter.payload == garbage and letter.key == b"some-run"
    assert letter.error_type == "UnknownSchema" and letter.reason


async def test_a_failing_target_opens_its_circuit_and_the_change_is_recorded_as_an_event(
        engine: Engine) -> None:
    down = FastAPI()

    @down.get("/flaky")
    async def flaky() -> Response:
        return Response(status_code=503)

    server = serve_in_background(down)
    definition = {"name": "calls_a_down_service", "steps": [{
        "id": "call", "type": "http", "method": "GET", "url": f"{server.url}/flaky",
        "retry": {"max_attempts": 7, "initial_interval": "20ms", "backoff": 1},
    }]}
    circuits = topic_name("circuits", engine.settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=engine.settings.kafka.bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(circuits, p) for p in consumer.partitions_for_topic(circuits) or ()]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
        final, events = await _run(engine, definition, {})
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
        server.stop()
    assert isinstance(final, RunFailed)
    change = decode(record.value)
    assert isinstance(change, CircuitStateChanged)
    assert (change.from_state, change.to_state) == ("closed", "open")
    assert change.target == server.url and change.consecutive_failures == 5
    assert change.open_until is not None and change.run_id == final.run_id
    failures = [e.error_type for e in events if isinstance(e, StepFailed)]
    assert failures[:5] == ["TargetFailed"] * 5 and "CircuitOpen" in failures[5:]
