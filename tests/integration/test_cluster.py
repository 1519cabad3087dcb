"""Bend on a 3-broker KRaft cluster (3 replicas, min.insync.replicas 2) under load, losing a
broker (kill -9), getting it back, then losing another: no run lost, no step succeeding
twice, and the read models equal a fresh rebuild. Prints the stall each broker loss causes.

    pytest -s tests/integration/test_cluster.py     # -s shows the figures
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from bend.core.commands import StartRun
from bend.core.events import RunCompleted, StepSucceeded
from bend.devstack.cluster import Cluster, running_cluster
from bend.devstack.engine import Engine, running_engine
from bend.devstack.kafka import admin_client
from bend.kafka.offsets import OffsetReader
from bend.kafka.producer import RecordProducer
from bend.runwatch import TERMINAL, RunWatcher
from bend.settings import DatabaseSettings, Settings
from projections.db import connect
from projections.lag import projection_lag
from projections.project import projected_topics
from projections.rebuild import rebuild

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

RUNS = 250
RATE_PER_S = 5.0  # runs started per second, steadily: 50 s of load
PARTITIONS = 4
FIRST_KILL_S = 12.0  # after the first start
DOWN_S = 6.0  # the first broker stays dead this long
# Kafka's own defaults decide how long a loss stalls (broker.session.timeout.ms 9 s); more
# server.properties may be given to measure others: CLUSTER_PROPERTIES="k=v,k=v".
PROPERTIES = dict(kv.split("=", 1) for kv in os.environ.get("CLUSTER_PROPERTIES", "").split(",")
                  if kv)
WORKFLOW = {
    "name": "chain",
    "steps": [
        {"id": "a", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}},
        {"id": "b", "type": "tool", "component": "noop@1", "inputs": {"n": "2"}, "after": ["a"]},
        {"id": "c", "type": "tool", "component": "noop@1", "inputs": {"n": "3"}, "after": ["b"]},
    ],
}
STEPS = {"a", "b", "c"}
READ_MODELS = (
    "workflows", "workflow_versions", "runs", "run_events", "steps", "step_attempts", "timers",
    "triggers", "trigger_firings", "dead_letters", "llm_usage", "audit", "components",
    "projection_offsets", "projection_errors",
)


@dataclass
class Kill:
    """One broker loss: which node, when (perf_counter), and what it cost."""

    node_id: int
    at: float
    led: int  # partitions of Bend's topics it led
    answering_s: float = float("nan")  # restart -> it answers as a broker again
    in_sync_s: float = float("nan")  # restart -> every replica in sync again


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # The test's own clients log every refused connection to a dead broker: expected here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    with running_cluster(name=f"t{uuid.uuid4().hex[:8]}", timeout_s=120,
                         properties=PROPERTIES) as c:
        yield c


def _leaders(cluster: Cluster, prefix: str) -> Counter[int]:
    """Broker id -> how many partitions of Bend's topics it leads now."""
    topics = admin_client(cluster.bootstrap).list_topics(timeout=10).topics
    return Counter(p.leader for name, t in topics.items() if name.startswith(f"{prefix}.")
                   for p in t.partitions.values())


def _victim(cluster: Cluster, prefix: str, alive: set[int]) -> tuple[int, int]:
    """The live broker leading the most of Bend's partitions, and how many it leads."""
    leaders = _leaders(cluster, prefix)
    node = max(sorted(alive), key=lambda n: leaders.get(n, 0))
    return node, leaders.get(node, 0)


def _projector(engine: Engine, database_url: str, schema: str) -> subprocess.Popen[bytes]:
    k = engine.settings.kafka
    env = {**os.environ, **engine.env, "BEND_KAFKA__BOOTSTRAP": k.bootstrap,
           "BEND_KAFKA__TOPIC_PREFIX": k.topic_prefix,
           "BEND_KAFKA__DEFAULT_PARTITIONS": str(k.default_partitions),
           "BEND_DATABASE_URL": database_url, "BEND_DATABASE__SCHEMA_NAME": schema,
           "BEND_LOG__LEVEL": "WARNING"}
    log = engine.settings.dev.state_dir / "logs" / k.topic_prefix / "projector.log"
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "projections", "run"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


async def _lag(settings: Settings) -> int:
    conn = await connect(settings.database.url or "", settings.database.schema_name)
    try:
        async with OffsetReader(settings) as offsets:
            return (await projection_lag(conn, offsets, projected_topics(settings))).total
    finally:
        await conn.close()


async def _caught_up(settings: Settings, projector: subprocess.Popen[bytes],
                     timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert projector.poll() is None, "the projector exited"
        try:
            if await _lag(settings) == 0:
                return
        except asyncpg.UndefinedTableError:
            pass  # not migrated yet
        assert time.monotonic() < deadline, "the projector did not catch up"
        await asyncio.sleep(0.3)


async def _snapshot(settings: Settings, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await connect(settings.database.url or "", schema)
    try:
        return {t: sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")), key=repr)
                for t in READ_MODELS}
    finally:
        await conn.close()


async def _drop_schemas(url: str, prefix: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                    f"{prefix}%"):
            await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()


def _stall(kill: Kill, until: float, done: list[float]) -> dict[str, float]:
    """What a broker loss cost, from the times steps were seen succeeding (sorted), up to
    `until` (the next loss): steps/s in the 5 s before it, the longest time without a step
    succeeding that spans it or follows it, and when steps/s got back to 80% of before."""
    before = [t for t in done if kill.at - 5.0 <= t < kill.at]
    rate = len(before) / 5.0
    after = [t for t in done if kill.at - 5.0 <= t < until]
    gaps = [(b - a, b) for a, b in zip(after, after[1:], strict=False) if b > kill.at]
    gap, gap_end = max(gaps, default=(0.0, kill.at))
    recovered = next((t for t in after if t >= gap_end and
                      sum(1 for u in after if t - 1.0 < u <= t) >= 0.8 * rate), float("nan"))
    return {"steps_per_s_before": rate, "longest_gap_s": gap,
            "gap_ended_after_s": gap_end - kill.at, "recovered_after_s": recovered - kill.at}


async def test_losing_a_broker_twice_under_load_loses_no_run_and_repeats_no_step(
        cluster: Cluster, database_url: str) -> None:
    kafka = {"bootstrap": cluster.bootstrap, "replication_factor": 3, "min_insync_replicas": 2}
    began = time.monotonic()
    with running_engine(partitions=PARTITIONS, kafka=kafka) as engine:
        prefix = engine.settings.kafka.topic_prefix
        settings = engine.settings.model_copy(update={"database": DatabaseSettings(
            url=database_url, schema_name=f"{prefix}_live")})
        projector = _projector(engine, database_url, settings.database.schema_name)
        try:
            result = await _load_with_faults(engine, cluster, prefix)
            await _caught_up(settings, projector, timeout_s=90)
        finally:
            projector.terminate()
            projector.wait(timeout=30)
        try:
            report = await rebuild(settings, f"{prefix}_rebuilt")
            live = await _snapshot(settings, settings.database.schema_name)
            rebuilt = await _snapshot(settings, report.schema)
        finally:
            await _drop_schemas(database_url, prefix)
    starts, watcher, kills, sent_at = result
    finished_at = {r: watcher.received_at[r][-1] for r in watcher.events}
    latencies = sorted(finished_at[s.run_id] - sent_at[s.run_id] for s in starts)
    done = sorted(t for run_id, events in watcher.events.items()
                  for e, t in zip(events, watcher.received_at[run_id], strict=True)
                  if isinstance(e, StepSucceeded))
    calm = sorted(finished_at[s.run_id] - sent_at[s.run_id] for s in starts
                  if finished_at[s.run_id] < kills[0].at)
    print(f"\n{RUNS} runs x {len(STEPS)} steps on 3 brokers ({PROPERTIES or 'Kafka defaults'})"
          f" in {time.monotonic() - began:.0f} s; run latency p50 {statistics.median(latencies):.2f} s, max {latencies[-1]:.2f} s;"
          f" before the first loss p50 {statistics.median(calm or [0]):.2f} s ({len(calm)} runs)")
    t0 = min(sent_at.values())
    for kill, until in zip(kills, [k.at for k in kills[1:]] + [float("inf")], strict=True):
        figures = ", ".join(f"{k} {v:.2f}" for k, v in _stall(kill, until, done).items())
        print(f"kill -9 broker {kill.node_id} at +{kill.at - t0:.1f} s (led {kill.led} "
              f"partitions): {figures}; restarted: answering after {kill.answering_s:.1f} s, "
              f"replicas in sync after {kill.in_sync_s:.1f} s")
    assert kills[-1].at < max(sent_at.values()), "the second loss came after the load"

    for start in starts:
        events = watcher.events[start.run_id]
        assert any(isinstance(e, RunCompleted) for e in events), start.run_id
        succeeded = Counter(e.step_id for e in events if isinstance(e, StepSucceeded))
        twice = [(e.step_id, e.event_id, e.seq) for e in events
                 if isinstance(e, StepSucceeded) and succeeded[e.step_id] > 1]
        assert set(succeeded) == STEPS and not twice, f"run {start.run_id}: {twice}"
    for table in READ_MODELS:
        assert live[table] == rebuilt[table], _differs(table, live[table], rebuilt[table])


def _differs(table: str, live: list[tuple[Any, ...]], rebuilt: list[tuple[Any, ...]]) -> str:
    """Which rows of `table` only the live read model or only the rebuild holds (a few)."""
    only_live = sorted(set(map(repr, live)) - set(map(repr, rebuilt)))
    only_rebuilt = sorted(set(map(repr, rebuilt)) - set(map(repr, live)))
    return (f"{table} differs from its rebuild: {len(only_live)} rows only live, e.g. "
            f"{only_live[:3]}; {len(only_rebuilt)} only rebuilt, e.g. {only_rebuilt[:3]}")


async def _load_with_faults(engine: Engine, cluster: Cluster, prefix: str) -> tuple[
        list[StartRun], RunWatcher, list[Kill], dict[str, float]]:
    starts = [engine.start_run(WORKFLOW, {}) for _ in range(RUNS)]
    sent_at: dict[str, float] = {}
    kills: list[Kill] = []
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings) as producer:  # as the API makes it
        watching = asyncio.create_task(_drain(watcher))

        async def start_all() -> None:
            t0 = time.perf_counter()
            sends = []
            for i, start in enumerate(starts):
                await asyncio.sleep(max(0.0, t0 + i / RATE_PER_S - time.perf_counter()))
                sent_at[start.run_id] = time.perf_counter()
                sends.append(asyncio.create_task(producer.send(start)))
            await asyncio.gather(*sends)

        async def faults() -> None:
            await asyncio.sleep(FIRST_KILL_S)
            first, led = _victim(cluster, prefix, {1, 2, 3})
            kills.append(Kill(first, time.perf_counter(), led))
            cluster.kill(first)
            await asyncio.sleep(DOWN_S)
            restarted = time.perf_counter()
            cluster.restart(first)  # on this thread: the node lives as long as it
            await asyncio.to_thread(cluster.wait_broker, first, 90)
            kills[0].answering_s = time.perf_counter() - restarted
            await asyncio.to_thread(cluster.wait_in_sync, 90)
            kills[0].in_sync_s = time.perf_counter() - restarted
            second, led = _victim(cluster, prefix, {1, 2, 3} - {first})
            kills.append(Kill(second, time.perf_counter(), led))
            cluster.kill(second)

        try:
            await asyncio.wait_for(asyncio.gather(start_all(), faults()), timeout=150)
            deadline = time.monotonic() + 120
            while unfinished := [s.run_id for s in starts if not any(
                    isinstance(e, TERMINAL) for e in watcher.events.get(s.run_id, ()))]:
                assert time.monotonic() < deadline, f"{len(unfinished)} runs unfinished, e.g. " \
                    f"{unfinished[:3]}"
                await asyncio.sleep(0.2)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
    return starts, watcher, kills, sent_at


async def _drain(watcher: RunWatcher) -> None:
    """Keep reading the run log so arrival times are taken as events come."""
    async for _ in watcher.stream():
        pass
