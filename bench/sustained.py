"""Sustained benchmark: CONC runs in flight at all times, as a user would load the engine.

RUNS runs of a CHAIN-step chain of `noop@1` tool steps; CONC runs are kept in flight (a new
run starts when one ends). Orchestrator, executor(s) and the projector run as processes.
Per CONC it reports steps/s, run latency p50/p99 (StartRun sent → RunCompleted read from the
run log), per-step p50 (run p50 / CHAIN), and how long after the last run completed the read
model (Postgres) had every run finished. The Kafka floor (`bench.roundtrip`) is measured in
the same run first, so every figure has the floor of its hour beside it. On a shared machine
steps/s follows the CPU the processes are given; the CPU each role used per step
(`cpu_ms_per_step`, from /proc) does not, so compare that across runs.

    python -m bench.sustained [--conc 1 20 50 200] [--runs N] [--chain 10] [--executors 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from bench.engine import chain
from bench.roundtrip import run as roundtrip
from bend.server.testing import drop_isolated
from bend.core.events import RunCompleted
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import TERMINAL, RunWatcher
from bend.settings import Settings, get_settings
from projections.db import connect, database_url

# Runs per CONC when --runs is not given (issue 14's table: enough for a steady state).
DEFAULT_RUNS = {1: 50, 20: 100, 50: 400, 200: 800}


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far; 0 where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_by_role(pids: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid, role in pids.items():
        out[role] = out.get(role, 0.0) + _cpu_s(pid)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def running_projector(settings: Settings, log_dir: Any) -> Iterator[subprocess.Popen[bytes]]:
    """The projector as its own process, on the engine's topics and a schema of its own."""
    env = {**os.environ, "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_DATABASE__SCHEMA_NAME": settings.database.schema_name,
           "BEND_OPS__PORT": "0", "BEND_LOG__FORMAT": "json"}
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{settings.kafka.topic_prefix}-projector.log").open("ab") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "projections", "run"], env=env,
                                stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _finished_in_read_model(settings: Settings, run_ids: list[str],
                                  timeout_s: float) -> float:
    """Seconds until the read model has every run of `run_ids` finished."""
    started = time.perf_counter()
    while True:
        try:
            conn = await connect(database_url(settings), settings.database.schema_name)
            break
        except Exception:  # the projector creates the schema when it starts
            if time.perf_counter() - started > timeout_s:
                raise
            await asyncio.sleep(0.05)
    try:
        while True:
            try:
                done = await conn.fetchval(
                    "SELECT count(*) FROM runs WHERE run_id = ANY($1::text[]) "
                    "AND status IN ('completed', 'failed', 'cancelled')", run_ids)
            except Exception:  # tables not migrated yet
                done = 0
            if done == len(run_ids):
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"read model has {done}/{len(run_ids)} runs finished "
                                   f"after {timeout_s:.0f} s")
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def sustained(engine: Engine, conc: int, runs: int, steps: int,
                    timeout_s: float) -> dict[str, Any]:
    """Keep `conc` runs of a `steps`-step chain in flight until `runs` have finished."""
    definition = chain(steps)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    failed = 0
    sends: list[asyncio.Task[Any]] = []
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings, linger_ms=0) as producer:

        def start_one() -> None:
            start = engine.start_run(definition, {})
            sent_at[start.run_id] = time.perf_counter()
            sends.append(asyncio.ensure_future(producer.send_many([start])))

        async def drive() -> None:
            nonlocal failed
            async for event in watcher.stream():
                if not isinstance(event, TERMINAL) or event.run_id not in sent_at:
                    continue
                latencies.append(time.perf_counter() - sent_at[event.run_id])
                failed += not isinstance(event, RunCompleted)
                if len(sent_at) < runs:
                    start_one()
                if len(latencies) == runs:
                    return

        began = time.perf_counter()
        for _ in range(min(conc, runs)):
            start_one()
        await asyncio.wait_for(drive(), timeout_s)
        ended = time.perf_counter()
        await asyncio.gather(*sends)
    read_model_s = await _finished_in_read_model(engine.settings, list(sent_at), timeout_s)
    p50 = statistics.median(latencies) * 1000
    return {
        "conc": conc, "runs": runs, "chain": steps, "failed_runs": failed,
        "seconds": round(ended - began, 2),
        "steps_per_s": round(runs * steps / (ended - began)),
        "run_p50_ms": round(p50, 1), "run_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "step_p50_ms": round(p50 / steps, 2),
        "read_model_after_last_run_s": round(read_model_s, 3),
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The floor, then each CONC on one engine (orchestrator, executors, projector)."""
    base = get_settings()
    results: list[dict[str, Any]] = []
    if not args.no_floor:
        floor = await roundtrip(base.kafka.bootstrap, 20_000, 1_000)
        results.append({"kafka_floor": {k: floor[k] for k in (
            "latency_p50_ms", "latency_p99_ms", "end_to_end_events_per_s")}})
        print(json.dumps(results[-1]), flush=True)
    prefix = f"s{uuid.uuid4().hex[:10]}"
    with running_engine(executors=args.executors, prefix=prefix) as engine:
        engine.settings = engine.settings.model_copy(update={
            "database": engine.settings.database.model_copy(update={
                "url": database_url(engine.settings), "schema_name": f"{prefix}_read"})})
        try:
            with running_projector(engine.settings, engine.workers.log_dir or
                                   engine.settings.dev.state_dir / "logs") as projector:
                pids = {p.pid: p.role for p in engine.workers.processes}
                pids[projector.pid] = "projector"
                await sustained(engine, 5, 10, 3, 120)  # warm-up: assignment, connections
                for conc in args.conc:
                    runs = args.runs or DEFAULT_RUNS.get(conc, max(50, 4 * conc))
                    before = _cpu_by_role(pids)
                    row = await sustained(engine, conc, runs, args.chain, args.timeout)
                    after = _cpu_by_role(pids)
                    row["executors"] = args.executors
                    row["cpu_ms_per_step"] = {
                        role: round((after[role] - before[role]) * 1000 / (runs * args.chain), 3)
                        for role in sorted(after)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            await drop_isolated(engine.settings, topics=False)
    return results


def main() -> None:
    """Command line; prints one JSON object per line (the floor first)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conc", type=int, nargs="+", default=[1, 20, 50, 200],
                        help="Runs kept in flight, one measurement each")
    parser.add_argument("--runs", type=int, default=0,
                        help="Runs per measurement (default: 50/100/400/800 for 1/20/50/200)")
    parser.add_argument("--chain", type=int, default=10, help="Tool steps per run")
    parser.add_argument("--executors", type=int, default=1, help="Executor processes")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--no-floor", action="store_true",
                        help="Skip the Kafka floor (run `python -m bench.roundtrip` beside it)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
