"""Replay on the real stack: the example run folded from Kafka, archived, and forked at a step."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bend.cli.demo import EXAMPLE
from bend.core.events import (
    AgentLlmCallRecorded, AgentToolCallRecorded, RunCompleted, StepStarted, StepSucceeded,
)
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.replay.archive import read_archive, write_archive
from bend.replay.fork import fork_run
from bend.replay.read import run_events_of
from bend.replay.replay import fold_report
from bend.runwatch import RunWatcher

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str) -> Iterator[Engine]:
    with running_engine() as engine:
        yield engine


async def _finished_example(engine: Engine) -> str:
    start = engine.start_run(yaml.safe_load(EXAMPLE.read_text()),
                             {"topic": "replays", "llm_base_url": engine.llm.base_url})
    async with RunWatcher(engine.settings) as watcher, RecordProducer(engine.settings) as producer:
        await producer.send(start)
        done = await watcher.wait_finished([start.run_id], timeout_s=60)
    assert isinstance(done[start.run_id], RunCompleted)
    return start.run_id


async def test_the_example_run_folds_from_kafka_and_from_its_archive_alike(
        engine: Engine, tmp_path: Path) -> None:
    run_id = await _finished_example(engine)
    recorded = await run_events_of(engine.settings, run_id)
    report = fold_report(run_id, [r.event for r in recorded])
    assert report.state.status.value == "completed"
    assert [r.event.seq for r in recorded] == list(range(1, len(recorded) + 1))
    research = next(line for line in report.steps if line.step_id == "research")
    assert research.attempts[0].llm_calls > 0 and research.attempts[0].prompt_tokens > 0
    path = tmp_path / "run.avro"
    write_archive(path, recorded)
    again = fold_report(run_id, [r.event for r in read_archive(path)])
    assert again.state == report.state


async def test_a_fork_at_research_calls_the_model_only_for_research_and_later(
        engine: Engine) -> None:
    source_id = await _finished_example(engine)
    requests_before = engine.llm.state.requests
    started = time.perf_counter()
    async with RunWatcher(engine.settings) as watcher:
        cmd = await fork_run(engine.settings, source_id, "research")
        done = await watcher.wait_finished([cmd.run_id], timeout_s=60)
    seconds = time.perf_counter() - started
    assert isinstance(done[cmd.run_id], RunCompleted), done[cmd.run_id]
    events = watcher.events[cmd.run_id]
    assert events[0].forked_from_run_id == source_id and events[0].fork_step_id == "research"
    reused = set(cmd.seed)
    assert {"plan", "search", "read_pages", "pause"} <= reused
    assert "research" not in reused and "report" not in reused
    worked = {e.step_id for e in events if isinstance(e, StepStarted)}
    assert not worked & reused  # no executor touched a reused step
    called = {e.step_id for e in events
              if isinstance(e, (AgentLlmCallRecorded, AgentToolCallRecorded))}
    assert called == {"research"}
    llm_calls = [e for e in events if isinstance(e, AgentLlmCallRecorded)]
    assert engine.llm.state.requests - requests_before == len(llm_calls) > 0
    succeeded = {e.step_id: e.output for e in events if isinstance(e, StepSucceeded)}
    source = fold_report(source_id, [r.event for r in
                                     await run_events_of(engine.settings, source_id)]).state
    assert all(succeeded[s] == source.step(s).output for s in reused)
    print(f"fork of the example run at research finished in {seconds:.2f} s")


async def test_the_cli_exports_and_imports_an_archive_and_replays_from_it(
        engine: Engine, tmp_path: Path) -> None:
    run_id = await _finished_example(engine)
    env = {**os.environ, **engine.env}
    out = tmp_path / "a.avro"

    def bend(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "bend"), "replay", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    result = bend("export", run_id, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "events of 1 runs" in bend("import", str(out)).stdout
    result = bend("run", run_id, "--archive", str(out), "--no-projection")
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "research" in result.stdout
