"""A crash between a decision's events and its outbox: the redelivered command sends the outbox.

The log is left as a crashed orchestrator leaves it: a parent's StartRun in the commands topic
(never committed by any consumer group), its decision's events in the run log, and the child
StartRun that decision owed never sent. A fresh orchestrator must recognise the command as
decided, send the child's start, and the parent must complete.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaProducer

from bend.contracts.admin import ensure_topics
from bend.contracts.codec import encode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import RunCompleted, WorkflowRegistered
from bend.devstack.engine import running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from bend.settings import get_settings

pytestmark = pytest.mark.integration

CHILD = {"name": "shout", "steps": [
    {"id": "loud", "type": "transform", "expression": "join('', [input.word, '!'])"}],
    "output": "steps.loud.output"}


def _parent(child_id: str) -> dict:
    return {"name": "parent", "steps": [
        {"id": "call", "type": "subworkflow", "workflow": child_id,
         "input": {"word": "${input.word}"}},
        {"id": "done", "type": "transform", "expression": "steps.call.output"}],
        "output": "steps.done.output"}


async def test_a_decision_whose_outbox_was_lost_sends_it_when_its_command_comes_back(
        kafka_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    base = get_settings()
    settings = base.model_copy(update={"kafka": base.kafka.model_copy(
        update={"topic_prefix": prefix})})
    ensure_topics(settings)
    child_id = f"shout-{uuid.uuid4().hex[:6]}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    registered = WorkflowRegistered(
        event_id=str(uuid.uuid4()), workflow_id=child_id, workflow_version=1, seq=1,
        occurred_at=now, name="shout", definition=definition_json(parse_definition(CHILD)))
    run_id = str(uuid.uuid4())
    start = StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-parent",
                     workflow_version=1, occurred_at=now, correlation_id=run_id,
                     definition=definition_json(parse_definition(_parent(child_id))),
                     input={"word": "hello"})
    decision = decide(None, start, now)
    assert isinstance(decision, Accepted)
    assert [type(c).__name__ for c in decision.outbox] == ["StartRun"]  # the child's start

    async with RecordProducer(settings) as records:
        await records.send(registered)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    watcher = RunWatcher(settings)
    await watcher.start()
    try:
        # What the crashed orchestrator left: the command (not committed), the decision's events
        # in the same partition of the run log, and no child StartRun anywhere.
        stamp = int(now.timestamp() * 1000)
        sent = await producer.send_and_wait(topic_name("commands", settings), encode(start),
                                            key=run_id.encode(), timestamp_ms=stamp)
        for event in decision.events:
            await producer.send_and_wait(topic_name("runs", settings), encode(event),
                                         key=run_id.encode(), partition=sent.partition)
        with running_engine(prefix=prefix, executors=0):
            done = await watcher.wait_finished([run_id], timeout_s=45)
    finally:
        await watcher.stop()
        await producer.stop()
    final = done[run_id]
    assert isinstance(final, RunCompleted), final
    assert final.output == "hello!"
    # The redelivered StartRun was not decided twice: the log holds each seq once.
    seqs = [e.seq for e in watcher.events[run_id]]
    assert len(seqs) == len(set(seqs))
