"""A real Faust executor whose partition 0 is paused by hand after its first record (the state
a Faust rebalance bug leaves a worker in): run by test_stall_watch as its own process.

Prints `recovered N.N` and exits 0 once the records sent after the pause are read and their
offset committed; exits 3 if that does not happen within `limit` seconds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import faust
from aiokafka import AIOKafkaProducer

from bend.contracts.admin import ensure_topics
from bend.settings import get_settings
from streams.app import create_app
from streams.executor import Executor
from streams.worker import watch_stalls


def main(limit: float) -> None:
    settings = get_settings()
    ensure_topics(settings)
    app = create_app("executor", settings)
    executor = Executor(app, settings, "stalled-executor")
    executor.register()
    topic = executor.tasks.get_topic_name()
    watch_stalls(app, settings, topic, lambda: executor.in_flight)

    async def send(producer: AIOKafkaProducer, n: int) -> None:
        for i in range(n):  # not tasks: each is dead-lettered, which is handling it
            await producer.send_and_wait(topic, b"not-a-task-%d" % i, partition=0)

    @app.task
    async def stall_and_wait() -> None:
        consumer = app.consumer
        while not any(tp.topic == topic and tp.partition == 0 for tp in consumer.assignment()):
            await asyncio.sleep(0.2)
        tp = next(tp for tp in consumer.assignment() if tp.topic == topic and tp.partition == 0)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
        await producer.start()
        try:
            await send(producer, 1)
            while consumer._committed_offset.get(tp) != 1:  # noqa: SLF001 - the test's probe
                await asyncio.sleep(0.2)
            consumer.pause_partitions({tp})  # the fault: held, never fetched again
            await send(producer, 3)
        finally:
            await producer.stop()
        began = time.monotonic()
        while time.monotonic() - began < limit:
            if consumer._committed_offset.get(tp) == 4:  # noqa: SLF001
                print(f"recovered {time.monotonic() - began:.1f}", flush=True)
                os._exit(0)
            await asyncio.sleep(0.2)
        print("still stalled", flush=True)
        os._exit(3)

    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False,
                 override_logging=False).execute_from_commandline()


if __name__ == "__main__":
    main(float(sys.argv[1]))
