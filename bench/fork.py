"""Time to fork a 50-step run: read its events from Kafka, fold them, send the fork's StartRun
(`fork_run`), and until the forked run completes on the real engine.

A chain of N transform steps runs once; it is then forked from step N/2 several times. Prints
one JSON object. Run with the local stack up (`bend dev up`):

    python -m bench.fork --steps 50 --forks 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from bend.core.events import RunCompleted
from bend.devstack.engine import running_engine
from bend.kafka.producer import RecordProducer
from bend.log import configure_logging
from bend.replay.fork import fork_run
from bend.runwatch import RunWatcher


def chain(steps: int) -> dict:
    """A workflow of `steps` transforms, each after (and reading) the one before."""
    out = [{"id": "s0", "type": "transform", "mapping": {"n": "input.n"}}]
    out += [{"id": f"s{i}", "type": "transform",
             "mapping": {"prev": f"steps.s{i - 1}.output", "i": f"`{i}`"},
             "after": [f"s{i - 1}"]} for i in range(1, steps)]
    return {"name": "chain", "steps": out}


async def measure(steps: int, forks: int) -> dict:
    """Run the chain once, then fork it `forks` times from its middle step."""
    with running_engine() as engine:
        start = engine.start_run(chain(steps), {"n": 0})
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            t0 = time.perf_counter()
            await producer.send(start)
            done = await watcher.wait_finished([start.run_id], timeout_s=120)
            original_s = time.perf_counter() - t0
        assert isinstance(done[start.run_id], RunCompleted), done
        sent, finished = [], []
        for _ in range(forks):
            async with RunWatcher(engine.settings) as watcher:
                t0 = time.perf_counter()
                cmd = await fork_run(engine.settings, start.run_id, f"s{steps // 2}")
                sent.append(time.perf_counter() - t0)
                done = await watcher.wait_finished([cmd.run_id], timeout_s=120)
                finished.append(time.perf_counter() - t0)
            assert isinstance(done[cmd.run_id], RunCompleted), done
            assert len(cmd.seed) == steps // 2
    return {"steps": steps, "fork_from": f"s{steps // 2}", "forks": forks,
            "original_run_s": round(original_s, 3),
            "fork_started_ms_median": round(statistics.median(sent) * 1000, 1),
            "fork_completed_s_median": round(statistics.median(finished), 3),
            "fork_completed_s_max": round(max(finished), 3)}


if __name__ == "__main__":
    configure_logging("WARNING", "console")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--forks", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.steps, args.forks)), indent=2))
