"""`bend demo`: Bend's main job end to end on the local stack, printed as it happens."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bend.contracts.admin import ensure_topics
from bend.contracts.codec import decode, encode
from bend.contracts.topics import key_for, topic_for
from bend.core.events import Event, WorkflowRegistered
from bend.settings import PROJECT_ROOT, Settings, get_settings

__all__ = ["demo", "round_trip"]

EXAMPLE = PROJECT_ROOT / "examples" / "research_agent.yaml"


async def round_trip(settings: Settings, event: Event) -> tuple[Event, int, int, float, int]:
    """Produce `event` with the codec, read it back from its partition and offset, decode it.

    Returns (decoded event, partition, offset, milliseconds, encoded bytes).
    """
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all",
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
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None,
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
    return yaml.safe_load(path.read_text())


@click.command("demo")
@click.option("--workflow", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=EXAMPLE, show_default=True, help="The workflow file to run.")
def demo(path: Path) -> None:
    """Create Bend's topics, send a workflow event through Kafka with the Avro codec, show it."""
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
