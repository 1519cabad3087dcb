"""Scale-out benchmark: steps/s with one and with two executor processes, and how long a
rebalance takes after an executor stops (SIGTERM) or dies (SIGKILL) under load.

Every step is a `noop@1` tool step, so each goes the whole way through Kafka. A rebalance is
timed from the signal to (a) the executor group Stable again with one member fewer and
(b) the first step completed on a partition the stopped process had held (a survivor took it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from bench.engine import chain
from bend.core.events import StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.explain.observe import partition_of
from bend.kafka import clients
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher


async def throughput(engine: Engine, runs: int, steps: int) -> dict[str, Any]:
    """Start `runs` chains of `steps` tool steps at once; steps/s until all finished."""
    definition = chain(steps)
    starts = [engine.start_run(definition, {}) for _ in range(runs)]
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings) as producer:
        began = time.perf_counter()
        await producer.send_many(starts)
        await watcher.wait_finished([s.run_id for s in starts], timeout_s=300)
        seconds = time.perf_counter() - began
    return {"runs": runs, "steps": runs * steps, "seconds": round(seconds, 2),
            "steps_per_s": round(runs * steps / seconds, 1)}


def _assignment(admin: AdminClient, group: str, topic: str) -> dict[str, set[int]]:
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return {m.member_id: {tp.partition for tp in m.assignment.topic_partitions
                          if tp.topic == topic} for m in desc.members}


async def rebalance(engine: Engine, how: str, runs: int, steps: int) -> dict[str, Any]:
    """Stop one executor mid-load; time to Stable and to a survivor's first step on its
    partitions."""
    s = engine.settings
    group, topic = f"{s.kafka.topic_prefix}-executor", f"{s.kafka.topic_prefix}.tasks"
    partitions = s.kafka.default_partitions
    admin = clients.confluent_admin(s.kafka)
    before = _assignment(admin, group, topic)
    starts = [engine.start_run(chain(steps), {}) for _ in range(runs)]
    async with RunWatcher(s) as watcher, RecordProducer(s) as producer:
        await producer.send_many(starts)
        async def going() -> None:  # let the load get going
            seen = 0
            async for ev in watcher.stream():
                seen += isinstance(ev, StepSucceeded)
                if seen >= runs:
                    return

        await asyncio.wait_for(going(), timeout=120)
        victim = next(p for p in engine.workers.processes if p.role == "executor" and p.alive())
        stopped_at = time.monotonic()
        victim.kill() if how == "kill" else victim.stop()
        engine.workers.processes.remove(victim)  # so a replacement can be waited for
        exited = datetime.now(timezone.utc)  # steps the victim finished end before this
        stable_s = None
        while time.monotonic() - stopped_at < 60:
            desc = await asyncio.to_thread(
                lambda: admin.describe_consumer_groups([group])[group].result(timeout=10))
            if (desc.state == ConsumerGroupState.STABLE
                    and len(desc.members) == len(before) - 1):
                stable_s = time.monotonic() - stopped_at
                break
            await asyncio.sleep(0.05)
        after = _assignment(admin, group, topic)
        gone = set().union(*(p for m, p in before.items() if m not in after))
        first_s = None

        async def first_moved() -> None:
            nonlocal first_s
            async for ev in watcher.stream():
                if (isinstance(ev, StepSucceeded) and ev.run_id and ev.occurred_at > exited
                        and partition_of(ev.run_id, partitions) in gone):
                    first_s = time.monotonic() - stopped_at
                    return

        try:
            await asyncio.wait_for(first_moved(), timeout=60)
        except TimeoutError:
            pass  # the load ended before a moved partition got a step: reported as null
        await watcher.wait_finished([x.run_id for x in starts], timeout_s=180)
    return {"signal": "SIGKILL" if how == "kill" else "SIGTERM", "moved_partitions": sorted(gone),
            "to_stable_s": None if stable_s is None else round(stable_s, 2),
            "to_first_moved_step_s": None if first_s is None else round(first_s, 2)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"partitions": args.partitions, "throughput": {}, "rebalance": []}
    for executors in (1, 2):
        with running_engine(executors=executors, partitions=args.partitions) as engine:
            await throughput(engine, 10, 2)  # warm up
            out["throughput"][executors] = await throughput(engine, args.runs, args.steps)
            print(json.dumps(out["throughput"][executors]), file=sys.stderr, flush=True)
            if executors == 2:
                for how in ("term", "kill"):
                    out["rebalance"].append(await rebalance(engine, how, args.runs,
                                                           args.rebalance_steps))
                    print(json.dumps(out["rebalance"][-1]), file=sys.stderr, flush=True)
                    engine.workers.start("executor", wait=True)
    return out


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rebalance-steps", type=int, default=12,
                        help="Steps per run of the load a rebalance happens under (long enough "
                             "to outlast a SIGKILL's session timeout)")
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
