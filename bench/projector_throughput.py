"""Projection throughput: records applied per second by the projector and by a rebuild.

Produces a synthetic log (bench.projection_history) to fresh topics, then times
1. the projector (consumer group, batches with offsets in one transaction) from start until
   its lag is 0, and
2. a rebuild of the same log into a fresh schema.
Prints one JSON object, with this process's CPU time per record beside the rates (the rates
follow whatever else the machine runs; `python -m bench.roundtrip` beside gives its floor). Run with the local stack up (`bend dev up`):

    python -m bench.projector_throughput --runs 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import asyncpg

from bench.projection_history import sample_history
from bend.server.testing import drop_isolated, isolated_settings
from bend.kafka.offsets import OffsetReader
from bend.log import configure_logging
from bend.kafka.producer import RecordProducer
from bend.settings import Settings, get_settings
from projections.db import connect, database_url
from projections.lag import projection_lag
from projections.project import projected_topics
from projections.projector import Projector
from projections.rebuild import REBUILD_BATCH, REBUILD_LANES, rebuild


async def _lag(conn: asyncpg.Connection, settings: Settings, offsets: OffsetReader) -> int:
    return (await projection_lag(conn, offsets, projected_topics(settings))).total


async def measure(settings: Settings, runs: int, steps: int, max_batch: int,
                  timeout_s: float, rebuild_batch: int = REBUILD_BATCH,
                  rebuild_lanes: int = REBUILD_LANES) -> dict:
    """Produce, project, rebuild; the rates."""
    history = sample_history(workflows=max(1, runs // 50), runs_per_workflow=min(runs, 50),
                             steps=steps, tag="bench")
    started = time.perf_counter()
    async with RecordProducer(settings, linger_ms=5) as producer:
        for i in range(0, len(history), 5000):
            await producer.send_many(history[i:i + 5000])
    produced_s = time.perf_counter() - started

    projector = Projector(settings, max_batch=max_batch)
    async with OffsetReader(settings) as offsets:
        started = time.perf_counter()
        task = asyncio.create_task(projector.run())
        # One connection polls the lag (a new one per poll cost Postgres a backend 20 times a
        # second, beside the projector it measured).
        watcher: asyncpg.Connection | None = None
        try:
            await asyncio.wait_for(projector.ready.wait(), timeout_s)
            watcher = await connect(database_url(settings), settings.database.schema_name)
            joined = time.perf_counter()  # the group join is start-up, not throughput
            cpu = time.process_time()
            while await _lag(watcher, settings, offsets) > 0:
                if time.perf_counter() - started > timeout_s:
                    raise TimeoutError(f"projector not caught up in {timeout_s} s")
                await asyncio.sleep(0.05)
            projected_s = time.perf_counter() - joined
            projector_cpu_s = time.process_time() - cpu
            join_s = joined - started
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if watcher is not None:
                await watcher.close()
    cpu = time.process_time()
    report = await rebuild(settings, f"{settings.kafka.topic_prefix}_rebuilt",
                           max_batch=rebuild_batch, lanes=rebuild_lanes)
    rebuild_cpu_s = time.process_time() - cpu
    return {
        "records": len(history), "runs": runs, "steps_per_run": steps, "max_batch": max_batch,
        "rebuild_batch": rebuild_batch, "rebuild_lanes": rebuild_lanes,
        "produce_records_per_s": round(len(history) / produced_s),
        "projector_records_per_s": round(len(history) / projected_s),
        "projector_seconds": round(projected_s, 2),
        "projector_join_seconds": round(join_s, 2),
        "rebuild_records_per_s": round(report.per_second),
        "rebuild_seconds": round(report.seconds, 2),
        # This process's CPU per record (Postgres's is apart): on a busy machine the rates
        # move with the neighbours, this much less.
        "projector_python_us_per_record": round(projector_cpu_s / len(history) * 1e6, 1),
        "rebuild_python_us_per_record": round(rebuild_cpu_s / len(history) * 1e6, 1),
    }


async def main(runs: int, steps: int, max_batch: int, timeout_s: float,
               rebuild_batch: int = REBUILD_BATCH, rebuild_lanes: int = REBUILD_LANES) -> dict:
    """Measure on topics and schemas of their own, then delete them."""
    settings = isolated_settings(get_settings(), prefix=None)
    try:
        return await measure(settings, runs, steps, max_batch, timeout_s, rebuild_batch,
                             rebuild_lanes)
    finally:
        await drop_isolated(settings)


if __name__ == "__main__":
    configure_logging("WARNING", "console")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=1000, help="the projector's")
    parser.add_argument("--rebuild-batch", type=int, default=REBUILD_BATCH)
    parser.add_argument("--rebuild-lanes", type=int, default=REBUILD_LANES,
                        help="connections the rebuild applies over")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs, args.steps, args.max_batch, args.timeout,
                                      args.rebuild_batch, args.rebuild_lanes)), indent=2))
