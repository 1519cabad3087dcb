"""Engine benchmark: N concurrent runs of an M-step chain and of a K-branch fan-out.

Every step is a `tool` step calling `noop@1`, so each one goes the whole way through Kafka:
CompleteStep → orchestrator → StepScheduled on the tasks topic → executor → CompleteStep.
Reports steps/s, runs/s and engine overhead per step: the time from a step's predecessor
completing (its StepSucceeded) to the step starting (its StepStarted), p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from bend.core.events import Event, RunCompleted, StepStarted, StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher


def chain(steps: int) -> dict[str, Any]:
    """A chain of `steps` no-op tool steps, each after the previous one."""
    nodes = [{"id": "s0", "type": "tool", "component": "noop@1", "inputs": {"i": "0"}}]
    for i in range(1, steps):
        nodes.append({"id": f"s{i}", "type": "tool", "component": "noop@1",
                      "inputs": {"i": str(i)}, "after": [f"s{i - 1}"]})
    return {"name": f"chain{steps}", "steps": nodes}


def fanout(branches: int) -> dict[str, Any]:
    """A parallel node with `branches` one-step branches, joined, then one last step."""
    nodes: list[dict[str, Any]] = [{
        "id": "fan", "type": "parallel", "join": "all",
        "branches": [[f"b{i}"] for i in range(branches)],
    }]
    nodes += [{"id": f"b{i}", "type": "tool", "component": "noop@1", "inputs": {"i": str(i)}}
              for i in range(branches)]
    nodes.append({"id": "done", "type": "tool", "component": "noop@1", "inputs": {},
                  "after": ["fan"]})
    return {"name": f"fanout{branches}", "steps": nodes}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _overheads(events: list[Event], definition: dict[str, Any]) -> list[float]:
    """ms from each step's last predecessor succeeding to the step starting."""
    after = {n["id"]: n.get("after", []) for n in definition["steps"]}
    for node in definition["steps"]:
        for branch in node.get("branches", []):
            for sid in branch:
                after[sid] = after.get(sid, [])
    done = {e.step_id: e.occurred_at for e in events if isinstance(e, StepSucceeded)}
    started = {e.step_id: e.occurred_at for e in events if isinstance(e, StepStarted)}
    out = []
    for sid, preds in after.items():
        if sid in started and preds and all(p in done for p in preds):
            prev = max(done[p] for p in preds)
            out.append((started[sid] - prev).total_seconds() * 1000)
    return out


async def scenario(engine: Engine, definition: dict[str, Any], runs: int,
                   timeout_s: float) -> dict[str, Any]:
    """Start `runs` runs of `definition` at once and wait for all of them."""
    starts = [engine.start_run(definition, {}) for _ in range(runs)]
    tool_steps = sum(1 for n in definition["steps"] if n["type"] == "tool")
    async with RunWatcher(engine.settings) as watcher, RecordProducer(engine.settings) as producer:
        t0 = time.perf_counter()
        await producer.send_many(starts)
        done = await watcher.wait_finished([s.run_id for s in starts], timeout_s=timeout_s)
        elapsed = time.perf_counter() - t0
    failed = [r for r, e in done.items() if not isinstance(e, RunCompleted)]
    overheads = [o for s in starts for o in _overheads(watcher.events[s.run_id], definition)]
    return {
        "workflow": definition["name"], "runs": runs, "executor_steps": runs * tool_steps,
        "failed_runs": len(failed), "seconds": round(elapsed, 2),
        "steps_per_s": round(runs * tool_steps / elapsed), "runs_per_s": round(runs / elapsed, 1),
        "overhead_p50_ms": round(statistics.median(overheads), 1) if overheads else None,
        "overhead_p99_ms": round(_pct(overheads, 0.99), 1) if overheads else None,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the scenarios on a fresh engine."""
    results = []
    with running_engine(executors=args.executors) as engine:
        await scenario(engine, chain(3), 5, 60)  # warm-up: assignment, connections, caches
        for concurrency in args.concurrency:
            results.append(await scenario(engine, chain(args.steps), concurrency, args.timeout))
        results.append(await scenario(engine, fanout(args.branches), args.fanout_runs,
                                      args.timeout))
    for r in results:
        r["executor_processes"] = args.executors
    return results


def main() -> None:
    """`python -m bench.engine [--steps M] [--concurrency N ...] [--branches K] [--executors E]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--fanout-runs", type=int, default=50)
    parser.add_argument("--executors", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    for row in asyncio.run(main_async(args)):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
