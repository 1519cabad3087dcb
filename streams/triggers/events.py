"""Kafka event triggers: one run per JSON record on the trigger's topic that passes its filter.

Each trigger reads with its own consumer group (`<prefix>-trigger-<trigger_id>`), committing
after the firing is produced; a new group starts at the records written since the trigger
took effect. The dedupe key is `topic/partition/offset`, so a redelivery starts no second run.
"""

from __future__ import annotations

import json

import jmespath
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.core.triggers import KafkaTrigger
from streams.triggers.book import TriggerBook, partitions
from streams.triggers.firing import Firer

__all__ = ["consume_forever"]

log = structlog.get_logger(__name__)


async def _start_positions(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                           since_ms: int) -> None:
    by_time = await consumer.offsets_for_times({tp: since_ms for tp in tps})
    ends = await consumer.end_offsets(tps)
    for tp in tps:
        committed = await consumer.committed(tp)
        if committed is not None:
            consumer.seek(tp, committed)
        else:
            found = by_time.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])


async def consume_forever(trigger_id: str, book: TriggerBook, firer: Firer, prefix: str,
                          bootstrap: str) -> None:
    """Fire one Kafka trigger per matching record until cancelled."""
    trigger = book.triggers[trigger_id]
    spec: KafkaTrigger = trigger.definition
    if spec.format != "json":
        log.error("kafka_trigger_format_unsupported", trigger_id=trigger_id, format=spec.format,
                  hint="use format json; avro event triggers are not supported yet")
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap,
                                group_id=f"{prefix}-trigger-{trigger_id}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = await partitions(consumer, spec.topic)
        if not tps:  # the supervisor starts this again on its next tick
            log.error("kafka_trigger_topic_missing", trigger_id=trigger_id, topic=spec.topic,
                      hint="create the topic; the trigger subscribes once it exists")
            return
        consumer.assign(tps)
        await _start_positions(consumer, tps, int(trigger.since.timestamp() * 1000))
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    await _one(trigger_id, book, firer, spec, record)
                if records:
                    await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await consumer.stop()


async def _one(trigger_id: str, book: TriggerBook, firer: Firer, spec: KafkaTrigger,
               record: object) -> None:
    key = f"{record.topic}/{record.partition}/{record.offset}"  # type: ignore[attr-defined]
    try:
        value = json.loads(record.value)  # type: ignore[attr-defined]
        if spec.filter is not None and not jmespath.search(spec.filter, value):
            return
        run_input = jmespath.search(spec.input_mapping, value) if spec.input_mapping else value
    except (ValueError, TypeError, jmespath.exceptions.JMESPathError) as exc:
        log.warning("kafka_trigger_record_skipped", trigger_id=trigger_id, record=key,
                    error=repr(exc))
        return
    trigger = book.triggers.get(trigger_id)
    if trigger is not None and trigger.enabled:
        await firer.fire(trigger, key, run_input)
