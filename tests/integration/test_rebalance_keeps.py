"""A second orchestrator joins: the first keeps part of its partitions across the rebalance and
does not rebuild them (issue 17 item 9); runs started after the join all complete."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bend.core.events import RunCompleted
from bend.devstack.engine import running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

WORKFLOW = {"name": "pair", "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}},
    {"id": "b", "type": "tool", "component": "noop@1", "inputs": {"n": "2"}, "after": ["a"]},
]}


def _logged(path: Path, event: str) -> list[dict]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line[line.index("{"):]) for line in lines if f'"{event}"' in line]


async def test_partitions_kept_across_a_join_are_not_rebuilt() -> None:
    with running_engine() as engine:
        first = next(p for p in engine.workers.processes if p.role == "orchestrator")
        warm = [engine.start_run(WORKFLOW, {}) for _ in range(8)]
        async with RunWatcher(engine.settings) as watcher, \
                RecordProducer(engine.settings) as producer:
            await producer.send_many(warm)
            await watcher.wait_finished([s.run_id for s in warm], timeout_s=60)
            engine.workers.start("orchestrator", wait=True)  # the join: a rebalance
            later = [engine.start_run(WORKFLOW, {}) for _ in range(20)]
            await producer.send_many(later)
            done = await watcher.wait_finished([s.run_id for s in later], timeout_s=90)
    assert all(isinstance(e, RunCompleted) for e in done.values()), \
        Counter(type(e).__name__ for e in done.values())
    kept = {p for row in _logged(first.log_path, "partitions_kept_across_rebalance")
            for p in row["partitions"]}
    rebuilt = Counter(row["partition"] for row in _logged(first.log_path, "partition_rebuilt"))
    assert kept, "the first orchestrator kept none of its partitions"
    assert all(rebuilt[p] == 1 for p in kept), rebuilt
