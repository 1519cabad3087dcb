"""Kafka event triggers: one run per JSON or Avro record on the trigger's topic that passes its
filter, and replays of the topic from an offset or a time.

Each trigger reads with its own consumer group (`<prefix>-trigger-<trigger_id>`), committing
after the firing is produced; a new group starts at the records written since the trigger
took effect. The dedupe key is `topic/partition/offset`: a record whose key fired lately (the
book keeps a bounded window of them, `streams.triggers.recent`) is skipped, and one fired
longer ago gets the same run id, which the orchestrator refuses twice; so a redelivery or a
replay over records already fired starts no second run.

A replay (`TriggerReplayRequested`) moves the trigger to the group `<base>-replay-<replay_id>`,
which starts at the requested offset (or the first record at or after the requested time) in
the replayed partitions and where the previous group was in the others; a restart resumes from
that group's commits, so a replay is applied once. With `force`, records that fired before fire
again, under the key `topic/partition/offset#<replay_id>` (a new run id), once per replay.
Records that cannot be decoded, filtered or mapped are skipped and recorded as TriggerFailed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jmespath
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.core.events import TriggerReplayRequested
from bend.core.triggers import KafkaTrigger
from bend.kafka import clients
from bend.settings import KafkaSettings
from streams.triggers.avro import AvroDecoder, RegistryUnreachable, UndecodableRecord
from streams.triggers.book import Trigger, TriggerBook, partitions
from streams.triggers.firing import Firer

__all__ = ["consume_forever", "group_id", "record_key"]

log = structlog.get_logger(__name__)

_REGISTRY_RETRY_S = 5.0


def group_id(prefix: str, trigger_id: str, replay: TriggerReplayRequested | None) -> str:
    """The consumer group a Kafka trigger reads with, after `replay` (None: never replayed)."""
    base = f"{prefix}-trigger-{trigger_id}"
    return base if replay is None else f"{base}-replay-{replay.replay_id}"


def record_key(topic: str, partition: int, offset: int,
               replay: TriggerReplayRequested | None = None) -> str:
    """A record's dedupe key; a forced replay's own key for it (`...#<replay_id>`)."""
    key = f"{topic}/{partition}/{offset}"
    return f"{key}#{replay.replay_id}" if replay is not None and replay.force else key


async def _committed_elsewhere(kafka: KafkaSettings, group: str,
                               tps: list[TopicPartition]) -> dict[TopicPartition, int | None]:
    """Where another consumer group (the one before a replay) had got to."""
    other = clients.consumer(kafka, group_id=group,
                             enable_auto_commit=False)
    await other.start()
    try:
        return {tp: await other.committed(tp) for tp in tps}
    finally:
        await other.stop()


async def _start_positions(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                           trigger: Trigger, previous: str, kafka: KafkaSettings) -> None:
    """Committed offsets of this group; else the replay's start (replayed partitions), the
    previous group's offsets (the others), else the first record since the trigger took effect."""
    replay = trigger.replay
    since_ms = int(trigger.since.timestamp() * 1000)
    wanted: dict[TopicPartition, int] = {}
    if replay is not None and replay.from_time is not None:
        wanted = {tp: int(replay.from_time.timestamp() * 1000) for tp in tps}
    by_time = await consumer.offsets_for_times({tp: wanted.get(tp, since_ms) for tp in tps})
    begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    before = (await _committed_elsewhere(kafka, previous, tps)
              if replay is not None else {})
    for tp in tps:
        committed = await consumer.committed(tp)
        found = by_time.get(tp)
        at_time = found.offset if found is not None else ends[tp]
        if committed is not None:
            position = committed
        elif replay is not None and replay.partition in (None, tp.partition):
            position = (min(max(replay.from_offset, begins[tp]), ends[tp])
                        if replay.from_offset is not None else at_time)
        elif before.get(tp) is not None:
            position = before[tp]
        else:
            position = at_time
        consumer.seek(tp, position)
        log.info("kafka_trigger_position", trigger_id=trigger.trigger_id, partition=tp.partition,
                 offset=position, replay_id=replay.replay_id if replay else None)


async def consume_forever(trigger_id: str, book: TriggerBook, firer: Firer, prefix: str,
                          kafka: KafkaSettings, registry_url: str | None = None) -> None:
    """Fire one Kafka trigger per matching record until cancelled."""
    trigger = book.triggers[trigger_id]
    spec: KafkaTrigger = trigger.definition
    replay = trigger.replay
    replays = [r for r in trigger.replays if r is not replay]
    previous = group_id(prefix, trigger_id, replays[-1] if replays else None)
    decoder = AvroDecoder(spec, registry_url) if spec.format == "avro" else None
    consumer = clients.consumer(kafka,
                                group_id=group_id(prefix, trigger_id, replay),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = await partitions(consumer, spec.topic)
        if not tps:  # the supervisor starts this again on its next tick
            problem = f"topic {spec.topic} does not exist; create it, the trigger subscribes then"
            if trigger.state.last_error != f"subscribe: {problem}":  # once, not every tick
                await firer.failed(trigger, "subscribe", problem, spec.topic)
            return
        consumer.assign(tps)
        await _start_positions(consumer, tps, trigger, previous, kafka)
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    await _one(trigger_id, book, firer, spec, decoder, record)
                if records:
                    await consumer.commit({tp: records[-1].offset + 1})
    except RegistryUnreachable as exc:  # nothing committed past the record: read it again
        await firer.failed(trigger, "decode", str(exc), spec.topic)
        await asyncio.sleep(_REGISTRY_RETRY_S)
    finally:
        await consumer.stop()


async def _value(spec: KafkaTrigger, decoder: AvroDecoder | None, raw: bytes | None) -> Any:
    if raw is None:
        raise UndecodableRecord("the record has no value (a tombstone)")
    if decoder is not None:
        return await decoder.decode(raw)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UndecodableRecord(f"not JSON ({exc}); set format: avro for Avro records") from None


async def _one(trigger_id: str, book: TriggerBook, firer: Firer, spec: KafkaTrigger,
               decoder: AvroDecoder | None, record: Any) -> None:
    trigger = book.triggers.get(trigger_id)
    if trigger is None or not trigger.enabled:
        return
    plain = record_key(record.topic, record.partition, record.offset)
    key = record_key(record.topic, record.partition, record.offset, trigger.replay)
    if key in trigger.fired_keys:  # plain: fired before; forced: fired in this replay
        log.info("kafka_trigger_record_fired_before", trigger_id=trigger_id, record=plain)
        return
    stage = "decode"
    try:
        value = await _value(spec, decoder, record.value)
        stage = "filter"
        if spec.filter is not None and not jmespath.search(spec.filter, value):
            return
        stage = "map"
        run_input = jmespath.search(spec.input_mapping, value) if spec.input_mapping else value
    except (UndecodableRecord, ValueError, TypeError, jmespath.exceptions.JMESPathError) as exc:
        await firer.failed(trigger, stage, str(exc) or type(exc).__name__, plain)
        return
    await firer.fire(trigger, key, run_input)
