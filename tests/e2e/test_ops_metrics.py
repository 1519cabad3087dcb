"""Every Bend process serves /metrics, /livez and /readyz over HTTP, with real values.

One engine (an orchestrator, two executors sharing one partition, the triggers worker, a
projector and the API, each a process of its own) runs the example workflow; then each
process is scraped over HTTP the way Prometheus (or curl) does it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bend.cli.demo import EXAMPLE
from bend.contracts.topics import topic_name
from bend.core.events import RunCompleted
from bend.devstack.engine import Engine, running_engine
from bend.devstack.workers import ops_url_from_log
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from projections.project import projected_topics
from tests.ops_http import http_get

pytestmark = pytest.mark.integration

# The scripted model gets a price, so its cost is a real, checkable number.
PRICE = {"bend-scripted": {"input_per_mtok": 1000.0, "output_per_mtok": 3000.0}}


@dataclass
class Process:
    """A Bend process this module started, and its ops (or API) address."""

    role: str
    url: str
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class Stack:
    """The engine's workers, the projector and the API."""

    engine: Engine
    processes: list[Process] = field(default_factory=list)

    def of(self, role: str) -> list[Process]:
        return [p for p in self.processes if p.role == role]



def _samples(url: str) -> list[Sample]:
    status, text = http_get(f"{url}/metrics")
    assert status == 200, text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _series(samples: list[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s.name == name]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _until(check: Callable[[], None], timeout_s: float = 30.0) -> None:
    """Retry `check` (assertions) until it passes; the last failure is raised at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[Stack]:
    saved = {k: os.environ.get(k) for k in ("BEND_OPS__LAG_INTERVAL_S", "BEND_OPS__LLM_PRICES")}
    os.environ["BEND_OPS__LAG_INTERVAL_S"] = "0.5"  # the workers inherit these
    os.environ["BEND_OPS__LLM_PRICES"] = json.dumps(PRICE)
    others: list[subprocess.Popen[bytes]] = []
    schema = ""
    try:
        with running_engine(executors=2, partitions=1) as engine:
            engine.workers.start("triggers")
            stack = Stack(engine, [Process(w.role, w.ops_url()) for w in
                                   engine.workers.processes])
            prefix = engine.settings.kafka.topic_prefix
            schema = f"{prefix}_read"
            env = {**os.environ, **engine.env, "BEND_DATABASE_URL": database_url,
                   "BEND_DATABASE__SCHEMA_NAME": schema, "BEND_LOG__FORMAT": "json",
                   "BEND_OPS__PORT": "0"}
            log_dir = engine.workers.log_dir or Path(".")
            log_path = log_dir / f"{prefix}-projector.log"
            with log_path.open("ab") as log:
                projector = subprocess.Popen([sys.executable, "-m", "projections", "run"],
                                             env=env, stdout=log, stderr=subprocess.STDOUT)
            others.append(projector)
            stack.processes.append(Process("projector", ops_url_from_log(
                log_path, projector, "projector"), projector))
            port = _free_port()
            with (log_dir / f"{prefix}-api.log").open("ab") as log:
                api = subprocess.Popen([sys.executable, "-m", "bend.server", "serve", "--port",
                                        str(port)], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            others.append(api)
            stack.processes.append(Process("api", f"http://127.0.0.1:{port}", api))

            def api_answers() -> None:
                assert api.poll() is None, f"the API exited; see {log_dir}"
                try:
                    assert http_get(f"http://127.0.0.1:{port}/livez", 2)[0] == 200
                except OSError as err:
                    raise AssertionError(str(err)) from err

            _until(api_answers, 60)
            yield stack
    finally:
        for proc in others:  # by the PIDs started here
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if schema:
            import asyncio

            async def drop() -> None:
                conn = await asyncpg.connect(database_url)
                try:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                finally:
                    await conn.close()

            asyncio.run(drop())


async def test_every_process_exposes_the_engines_metrics_with_real_values(stack: Stack) -> None:
    engine = stack.engine
    start = engine.start_run(yaml.safe_load(EXAMPLE.read_text()),
                             {"topic": "durable execution", "llm_base_url": engine.llm.base_url})
    async with RunWatcher(engine.settings) as watcher, RecordProducer(engine.settings) as producer:
        await producer.send(start)
        done = await watcher.wait_finished([start.run_id], timeout_s=90)
    assert isinstance(done[start.run_id], RunCompleted), done
    settings = engine.settings
    commands, tasks = topic_name("commands", settings), topic_name("tasks", settings)
    [orchestrator] = stack.of("orchestrator")
    executors = stack.of("executor")
    [triggers] = stack.of("triggers")
    [projector] = stack.of("projector")
    [api] = stack.of("api")

    def lag_per_assigned_partition(samples: list[Sample], topics: set[str]) -> None:
        lags = _series(samples, "bend_consumer_lag")
        assigned = _total(samples, "bend_consumer_assigned_partitions")
        assert len(lags) == assigned, lags
        assert {s.labels["topic"] for s in lags} <= topics
        assert all(s.value >= 0 for s in lags)

    def orchestrator_counts() -> None:
        got = _samples(orchestrator.url)
        assert _total(got, "bend_runs_started_total", workflow="research_agent") >= 1
        assert _total(got, "bend_runs_finished_total", workflow="research_agent",
                      outcome="completed") >= 1
        assert _total(got, "bend_step_duration_seconds_count", node_type="agent",
                      outcome="succeeded") >= 1
        assert _total(got, "bend_step_duration_seconds_count") >= 9  # every step of the run
        assert _total(got, "bend_step_overhead_seconds_count", node_type="tool") >= 1
        assert _total(got, "bend_commands_total", command="StartRun", result="accepted") >= 1
        assert _total(got, "bend_info", role="orchestrator") == 1
        assert _total(got, "bend_consumer_assigned_partitions") == 1  # one partition of one
        lag_per_assigned_partition(got, {commands})

    def executors_count() -> None:
        scraped = [_samples(e.url) for e in executors]
        # One partition, two executors: one holds it and ran every step, the other idles.
        [busy] = [s for s in scraped if _total(s, "bend_consumer_assigned_partitions") == 1]
        [idle] = [s for s in scraped if _total(s, "bend_consumer_assigned_partitions") == 0]
        prompt = _total(busy, "bend_llm_tokens_total", kind="prompt")
        completion = _total(busy, "bend_llm_tokens_total", kind="completion")
        assert prompt > 0 and completion > 0
        assert _total(busy, "bend_llm_calls_total", model="bend-scripted-researcher") >= 1
        assert _total(busy, "bend_llm_cost_usd_total") == pytest.approx(
            (prompt * 1000 + completion * 3000) / 1e6)
        assert _total(busy, "bend_executor_steps_total", node_type="agent",
                      outcome="succeeded") >= 1
        [breaker] = [s for s in _series(busy, "bend_circuit_state")
                     if s.labels["target"] == engine.llm.url]
        assert breaker.value == 0  # closed
        lag_per_assigned_partition(busy, {tasks})
        assert _series(idle, "bend_consumer_lag") == []
        assert _total(idle, "bend_llm_calls_total") == 0

    def triggers_lag() -> None:
        got = _samples(triggers.url)
        assert _total(got, "bend_consumer_assigned_partitions") >= 1
        lag_per_assigned_partition(got, {topic_name("triggers", settings)})

    def projector_lag() -> None:
        got = _samples(projector.url)
        lags = _series(got, "bend_projection_lag")
        assert {s.labels["topic"] for s in lags} == set(projected_topics(settings))
        assert len(lags) == len(projected_topics(settings))  # one partition each
        assert sum(s.value for s in lags) == 0  # caught up with the whole run

    def api_requests() -> None:
        assert http_get(f"{api.url}/api/health")[0] == 200
        got = _samples(api.url)
        assert _total(got, "bend_http_requests_total", method="GET", route="/api/health",
                      status="200") >= 1
        assert _total(got, "bend_info", role="api") == 1

    for check in (orchestrator_counts, executors_count, triggers_lag, projector_lag,
                  api_requests):
        _until(check)


def test_each_process_is_live_and_ready_and_an_executor_without_a_partition_is_not(
        stack: Stack) -> None:
    for proc in stack.processes:
        status, body = http_get(f"{proc.url}/livez")
        assert status == 200, (proc.role, body)

    def readiness() -> dict[str, list[tuple[int, dict]]]:
        out: dict[str, list[tuple[int, dict]]] = {}
        for proc in stack.processes:
            status, body = http_get(f"{proc.url}/readyz")
            out.setdefault(proc.role, []).append((status, json.loads(body)))
        return out

    def all_but_one_executor_ready() -> None:
        got = readiness()
        for role in ("orchestrator", "triggers", "projector", "api"):
            [(status, body)] = got[role]
            assert status == 200 and body["ready"] is True, (role, body)
        assert set(got["projector"][0][1]["checks"]) == {"kafka", "postgres", "assignment"}
        assert set(got["orchestrator"][0][1]["checks"]) == {"kafka", "assignment"}
        assert got["api"][0][1]["projection_lag"] is not None
        [(status, idle)] = [r for r in got["executor"] if r[0] == 503]
        [(_, busy)] = [r for r in got["executor"] if r[0] == 200]
        assert idle["ready"] is False and idle["checks"]["kafka"]["ok"] is True
        assert idle["checks"]["assignment"]["ok"] is False
        assert "no partition of group" in idle["checks"]["assignment"]["detail"]
        assert busy["checks"]["assignment"]["detail"].startswith("1 partition(s)")

    _until(all_but_one_executor_ready)
