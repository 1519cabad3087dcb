"""The floor every Bend benchmark is compared with: one event through Kafka with the Avro codec.

Produces `StepSucceeded` events (encoded with the codec) to a fresh topic with aiokafka
(acks=all, idempotent) and consumes them back, decoding each. Reports:
- throughput: N events produced back to back, then consumed (events/s each way and end to end);
- latency: one event at a time, produce → consume → decode (p50/p99 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import datetime, timezone

from confluent_kafka.admin import NewTopic

from bend.contracts.codec import decode, encode
from bend.core.events import StepSucceeded
from bend.kafka import clients
from bend.settings import KafkaSettings, get_settings


def _event(i: int, run_id: str) -> StepSucceeded:
    return StepSucceeded(
        event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="bench", workflow_version=1,
        seq=i, occurred_at=datetime.now(timezone.utc), step_id=f"step-{i % 10}",
        output={"ok": True, "i": i}, duration_ms=1,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(kafka: KafkaSettings, count: int, latency_samples: int) -> dict:
    """Measure throughput and single-event latency; returns the figures."""
    topic = f"bench.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = clients.confluent_admin(kafka)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    producer = clients.producer(kafka, acks="all",
                                enable_idempotence=True, linger_ms=0)
    consumer = clients.consumer(kafka, topic, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=5)
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topic, encode(_event(0, "warm")), key=b"warm")
        await consumer.getone()
        # Throughput: produce everything, then consume and decode everything.
        events = [encode(_event(i, "run-tp")) for i in range(count)]
        t0 = time.perf_counter()
        futures = [await producer.send(topic, value, key=b"run-tp") for value in events]
        await asyncio.gather(*futures)
        t1 = time.perf_counter()
        got = 0
        while got < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                for record in records:
                    decode(record.value)
                    got += 1
        t2 = time.perf_counter()
        # Latency: one event at a time through the broker and the codec.
        latencies = []
        for i in range(latency_samples):
            start = time.perf_counter()
            await producer.send_and_wait(topic, encode(_event(i, "run-lat")), key=b"run-lat")
            record = await consumer.getone()
            decode(record.value)
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
        admin.delete_topics([topic])
    return {
        "events": count,
        "produce_events_per_s": round(count / (t1 - t0)),
        "consume_events_per_s": round(count / (t2 - t1)),
        "end_to_end_events_per_s": round(count / (t2 - t0)),
        "latency_samples": latency_samples,
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p99_ms": round(_pct(latencies, 0.99), 2),
        "record_bytes": len(events[0]),
    }


def main() -> None:
    """Command line: `python -m bench.roundtrip [--count N] [--latency-samples M]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--latency-samples", type=int, default=1_000)
    args = parser.parse_args()
    figures = asyncio.run(run(get_settings().kafka, args.count, args.latency_samples))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
