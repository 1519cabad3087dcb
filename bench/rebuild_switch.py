"""Rebuild-and-switch of the read model (`bend replay projections`), with a live projector.

Produces a synthetic log (bench.projection_history) to fresh topics, lets a projector catch
up on the live schema (and keep running), then rebuilds the whole read model from the log's
start, verifies it table by table against the live one at the same offsets and switches it
in. Prints one JSON object: events/s of the rebuild, how long the projector was held for the
verify and switch, whether the tables were identical. Run with the local stack up:

    python -m bench.rebuild_switch --runs 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.projection_history import sample_history
from bend.server.testing import drop_isolated, isolated_settings
from bend.kafka.producer import RecordProducer
from bend.log import configure_logging
from bend.replay.projections import new_status, rebuild_projections
from bend.settings import Settings, get_settings
from projections.projector import Projector


async def measure(settings: Settings, runs: int, steps: int) -> dict:
    """Produce, project live, rebuild and switch; the figures."""
    history = sample_history(workflows=max(1, runs // 50), runs_per_workflow=min(runs, 50),
                             steps=steps, tag="bench")
    async with RecordProducer(settings, linger_ms=5) as producer:
        for i in range(0, len(history), 5000):
            await producer.send_many(history[i:i + 5000])
    projector = Projector(settings, max_batch=1000)
    task = asyncio.create_task(projector.run())
    try:
        await asyncio.wait_for(projector.ready.wait(), 60)
        started = time.perf_counter()
        status = await rebuild_projections(settings, new_status(settings), drop_retired=True)
        total_s = time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {
        "records": status.records, "runs": runs, "steps_per_run": steps,
        "rebuild_events_per_s": round(status.per_second),
        "rebuild_seconds": round(status.rebuild_seconds, 2),
        "verify_and_switch_ms": round(status.switch_ms or 0, 1),
        "total_seconds": round(total_s, 2), "tables_compared": len(status.tables),
        "identical": status.compared and not status.differences, "phase": status.phase,
    }


async def main(runs: int, steps: int) -> dict:
    """Measure on topics and schemas of their own, then delete them."""
    settings = isolated_settings(get_settings(), prefix=None)
    try:
        return await measure(settings, runs, steps)
    finally:
        await drop_isolated(settings)


if __name__ == "__main__":
    configure_logging("WARNING", "console")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs, args.steps)), indent=2))
