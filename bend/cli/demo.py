"""`bend demo`: Bend's main job end to end on the local stack, printed as it happens."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import yaml
from aiokafka import TopicPartition

from bend.contracts.admin import ensure_topics
from bend.contracts.codec import decode, encode
from bend.contracts.topics import key_for, topic_for
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, Event, RunCompleted, RunFailed, StepCancelled,
    StepFailed, StepScheduled, StepSkipped, StepStarted, StepSucceeded, TimerFired, TimerSet,
    WorkflowRegistered,
)
from bend.devstack.engine import Engine, running_engine
from bend.kafka import clients
from bend.kafka.producer import RecordProducer
from bend.runwatch import TERMINAL, RunWatcher
from bend.settings import PROJECT_ROOT, Settings, get_settings

__all__ = ["demo", "round_trip"]

EXAMPLE = PROJECT_ROOT / "examples" / "research_agent.yaml"


async def round_trip(settings: Settings, event: Event) -> tuple[Event, int, int, float, int]:
    """Produce `event` with the codec, read it back from its partition and offset, decode it.

    Returns (decoded event, partition, offset, milliseconds, encoded bytes).
    """
    producer = clients.producer(settings.kafka, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        payload = encode(event)
        started = time.perf_counter()
        meta = await producer.send_and_wait(topic_for(event, settings), payload,
                                            key=key_for(event))
    finally:
        await producer.stop()
    tp = TopicPartition(meta.topic, meta.partition)
    consumer = clients.consumer(settings.kafka, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(tp), timeout=10)
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        await consumer.stop()
    back = decode(record.value)
    assert isinstance(back, Event)
    return back, meta.partition, meta.offset, elapsed_ms, len(payload)


def _definition(path: Path) -> dict[str, Any]:
    definition: dict[str, Any] = yaml.safe_load(path.read_text())
    return definition


def _detail(event: Event) -> str:
    """One line of what an event says, for the timeline."""
    match event:
        case StepFailed():
            return (f"{event.step_id} attempt {event.attempt}: {event.error_type}: "
                    f"{event.message[:80]}")
        case StepSucceeded() | StepStarted() | StepScheduled():
            extra = f" ({event.node_type})" if isinstance(event, StepScheduled) else ""
            return f"{event.step_id}{extra}" + (f" attempt {event.attempt}"
                                                if event.attempt > 1 else "")
        case StepSkipped() | StepCancelled():
            return f"{event.step_id}: {event.reason}"
        case TimerSet():
            return f"{event.purpose} until {event.fire_at:%H:%M:%S.%f}"[:-3]
        case TimerFired():
            return f"{event.purpose} {event.step_id or ''}"
        case AgentLlmCallRecorded():
            return (f"{event.step_id} call {event.call_index}: {event.model}, "
                    f"{event.prompt_tokens}+{event.completion_tokens} tokens, "
                    f"{event.latency_ms} ms")
        case AgentToolCallRecorded():
            return f"{event.step_id} call {event.call_index}: {event.tool_name}({event.arguments})"
        case RunFailed():
            return f"{event.error_type}: {event.message}"
    return ""


async def run_example(engine: Engine, definition: dict[str, Any], input: dict[str, Any],
                      timeout_s: float) -> tuple[Event, list[Event]]:
    """Start one run of `definition` and print its events as they come off the run log."""
    start = engine.start_run(definition, input, workflow_id=f"demo-{definition['name']}")
    run_id = start.run_id
    assert run_id is not None  # start_run always names the run
    click.secho(f"\nrun {start.run_id} of {definition['name']}", bold=True)
    async with RunWatcher(engine.settings) as watcher, RecordProducer(engine.settings) as producer:
        t0 = time.perf_counter()
        await producer.send(start)

        async def follow() -> Event:
            async for event in watcher.stream():
                if event.run_id != start.run_id:
                    continue
                click.echo(f"  {time.perf_counter() - t0:7.3f}s  #{event.seq:<3} "
                           f"{event.event_type:<22} {_detail(event)}")
                if isinstance(event, TERMINAL):
                    return event
            raise AssertionError("unreachable")

        final = await asyncio.wait_for(follow(), timeout=timeout_s)
    return final, watcher.events[run_id]


def _outcome(final: Event, events: list[Event]) -> None:
    steps: dict[str, list[Event]] = {}
    for ev in events:
        if hasattr(ev, "step_id") and ev.step_id:
            steps.setdefault(ev.step_id, []).append(ev)
    click.secho(f"\noutcome: {final.event_type}", bold=True,
                fg="green" if isinstance(final, RunCompleted) else "red")
    click.echo(f"  {'step':<14} {'status':<10} {'attempts':>8} {'ms':>8}")
    for step_id, evs in steps.items():
        last = [e for e in evs if isinstance(e, (StepSucceeded, StepFailed, StepSkipped,
                                                   StepCancelled))]
        status = type(last[-1]).__name__.removeprefix("Step").lower() if last else "open"
        attempts = max((getattr(e, "attempt", 1) for e in evs), default=1)
        begun = next((e.occurred_at for e in evs if isinstance(e, (StepStarted,
                                                                   StepScheduled))), None)
        ms = (last[-1].occurred_at - begun).total_seconds() * 1000 if last and begun else 0
        click.echo(f"  {step_id:<14} {status:<10} {attempts:>8} {ms:>8.0f}")
    llm = [e for e in events if isinstance(e, AgentLlmCallRecorded)]
    click.echo(f"  LLM calls: {len(llm)}, tokens: "
               f"{sum(e.prompt_tokens + e.completion_tokens for e in llm)}")
    if isinstance(final, RunCompleted):
        click.echo("  output: " + json.dumps(final.output, indent=2)[:1500].replace("\n", "\n  "))


@click.command("demo")
@click.option("--workflow", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=EXAMPLE, show_default=True, help="The workflow file to run.")
@click.option("--topic", default="durable execution on Kafka", show_default=True,
              help="What the example agent researches.")
@click.option("--timeout", "timeout_s", default=120.0, show_default=True)
def demo(path: Path, topic: str, timeout_s: float) -> None:
    """Run Bend's main job: topics, a codec round trip, then the example workflow end to end."""
    settings = get_settings()
    report = ensure_topics(settings)
    click.secho("topics", bold=True)
    for name in report.verified:
        state = "created" if name in report.created else "verified"
        click.echo(f"  {name:<24} {state}")
    definition = _definition(path)
    event = WorkflowRegistered(
        event_id=str(uuid.uuid4()), workflow_id=f"demo-{uuid.uuid4().hex[:8]}",
        workflow_version=1, seq=1, occurred_at=datetime.now(timezone.utc),
        tenant=settings.tenant, project=settings.project, name=definition.get("name", path.stem),
        description=definition.get("description", ""), definition=definition,
    )
    back, partition, offset, ms, size = asyncio.run(round_trip(settings, event))
    click.secho("\nround trip through Kafka (Avro single-object encoding)", bold=True)
    click.echo(f"  {back.event_type} {back.workflow_id} -> {topic_for(back, settings)}"
               f"[{partition}]@{offset}: {size} bytes, {ms:.1f} ms produce→consume→decode")
    click.echo(f"  decoded equals sent: {back == event}")
    if back != event:
        raise click.ClickException("the event read back differs from the one sent")

    click.secho("\nstarting an orchestrator, an executor and the scripted model server", bold=True)
    with running_engine(prefix=settings.kafka.topic_prefix, llm_port=0) as engine:
        for worker in engine.workers.processes:
            click.echo(f"  {worker.role:<13} pid {worker.pid}, log {worker.log_path}")
        click.echo(f"  model server  {engine.llm.base_url}")
        final, events = asyncio.run(run_example(
            engine, definition, {"topic": topic, "llm_base_url": engine.llm.base_url},
            timeout_s))
    _outcome(final, events)
    if not isinstance(final, RunCompleted):
        raise click.ClickException(f"the run ended {final.event_type}")
