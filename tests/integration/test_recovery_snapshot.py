"""kill -9 of the orchestrator after a snapshot: its successor folds the snapshot and the log's
tail, not the whole log; every run completes, no step succeeds twice, and a StartRun for a run
that finished before the kill does not start it again."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from bend.core.events import RunCompleted, RunRequested, StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from streams.app import topic_names
from streams.snapshots import LoadedSnapshot, load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

QUICK = {"name": "quick", "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}},
]}
SLOW = {"name": "slow", "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}},
    {"id": "nap", "type": "delay", "duration": "6s", "after": ["a"]},
    {"id": "b", "type": "tool", "component": "noop@1", "inputs": {"n": "2"}, "after": ["nap"]},
    {"id": "c", "type": "tool", "component": "flaky@1", "inputs": {"fail_attempts": "${`1`}"},
     "after": ["b"]},
]}
SLOW_STEPS = {"a", "nap", "b", "c"}


async def _snapshots(engine: Engine) -> list[LoadedSnapshot]:
    s = engine.settings
    return [await load_snapshot(s.kafka, topic_names(s).run_states, p)
            for p in range(s.kafka.default_partitions)]


async def _until_snapshotted(engine: Engine, open_runs: int, finished: int) -> None:
    """Wait for rounds holding the open runs and the finished runs' tombstones."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        loaded = await _snapshots(engine)
        if sum(len(x.runs) for x in loaded) >= open_runs \
                and sum(len(x.finished) for x in loaded) >= finished \
                and all(x.round is not None for x in loaded):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"no snapshot of {open_runs} open runs within 30 s")


def _rebuilds(log_path: Path) -> list[dict]:
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        start = line.find("{")
        if start >= 0 and '"partition_rebuilt"' in line:
            out.append(json.loads(line[start:]))
    return out


async def test_an_orchestrator_killed_after_a_snapshot_is_succeeded_from_it() -> None:
    with running_engine() as engine:
        quick = [engine.start_run(QUICK, {}) for _ in range(20)]
        slow = [engine.start_run(SLOW, {}) for _ in range(20)]
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(quick)
            await watcher.wait_finished([s.run_id for s in quick], timeout_s=60)
            await producer.send_many(slow)
            await _until_snapshotted(engine, open_runs=len(slow), finished=len(quick))
            first = next(p for p in engine.workers.processes if p.role == "orchestrator")
            first.kill()
            successor = engine.workers.start("orchestrator", wait=False)
            # Commands after the kill: new runs, and StartRuns again for finished ones.
            later = [engine.start_run(SLOW, {}) for _ in range(10)]
            again = [engine.start_run(QUICK, {}, run_id=s.run_id) for s in quick]
            await producer.send_many(later + again)
            runs = [s.run_id for s in slow + later]
            done = await watcher.wait_finished(runs, timeout_s=120)
            await asyncio.sleep(2)  # time for a wrongly restarted quick run to show
    assert all(isinstance(e, RunCompleted) for e in done.values()), \
        Counter(type(e).__name__ for e in done.values())
    for run_id in runs:
        events = watcher.events[run_id]
        succeeded = Counter(e.step_id for e in events if isinstance(e, StepSucceeded))
        assert set(succeeded) == SLOW_STEPS and max(succeeded.values()) == 1, succeeded
        seqs = sorted(e.seq for e in events)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a duplicate"
    for start in quick:
        requested = [e for e in watcher.events[start.run_id] if isinstance(e, RunRequested)]
        assert len(requested) == 1, f"finished run {start.run_id} was started again"
    rebuilds = _rebuilds(successor.log_path)
    assert rebuilds, "the successor logged no rebuild"
    with_runs = [r for r in rebuilds if r["snapshot_records"]]
    assert with_runs and all(r["from_offset"] > 0 for r in with_runs), rebuilds
    assert sum(r["snapshot_events"] for r in rebuilds) > 0, rebuilds
