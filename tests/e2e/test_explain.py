"""`GET /api/executions/{run_id}/explain` and `bend runs explain`, each situation made for real:
a delay, a retry back-off, an open circuit, a child run, a dead letter, a stopped executor, a
full executor and a stalled orchestrator, on the real engine, API and projector processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bench.api_latency import ServedApi, served_api
from bend.cli.main import cli
from bend.contracts.codec import encode
from bend.core.commands import FireTimer
from bend.devstack.engine import Engine, running_engine
from bend.devstack.llm_server import ServerHandle, serve_in_background

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Stack = tuple[Engine, ServedApi]


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """Worker processes started inside inherit these variables."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def target() -> Iterator[ServerHandle]:
    """A local HTTP target: /fail answers 500, /slow sleeps."""
    app = FastAPI()

    @app.get("/fail")
    async def fail() -> JSONResponse:
        return JSONResponse({"detail": "down"}, status_code=500)

    @app.get("/slow")
    async def slow(s: float) -> dict:
        await asyncio.sleep(s)
        return {"slept": s}

    handle = serve_in_background(app)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[Stack]:
    with running_engine(partitions=2) as engine, served_api(engine.settings) as served:
        yield engine, served


@pytest.fixture(scope="module")
def tight(kafka_bootstrap: str, database_url: str) -> Iterator[Stack]:
    """One partition, executors that run two steps at once, a long session timeout (so a
    stopped orchestrator keeps its partition for a while)."""
    env = {"BEND_WORKERS__EXECUTOR_CONCURRENCY": "2", "BEND_WORKERS__SESSION_TIMEOUT_S": "30"}
    with _env(env), running_engine(partitions=1) as engine, \
            served_api(engine.settings, env=env) as served:
        yield engine, served


def _client(served: ServedApi) -> httpx.Client:
    return httpx.Client(base_url=served.url, headers=served.headers, timeout=30)


def start(served: ServedApi, definition: dict[str, Any], run_input: Any = None) -> str:
    """Register `definition` (under a fresh name) and start a run of it; its id."""
    definition = {**definition, "name": f"{definition['name']}-{uuid.uuid4().hex[:6]}"}
    with _client(served) as c:
        wf = c.post("/api/workflows", json=definition)
        assert wf.status_code == 201, wf.text
        r = c.post(f"/api/workflows/{wf.json()['workflow_id']}/execute",
                   json={"input": run_input or {}},
                   params={"wait_for": wf.json()["position"]["token"]})
        assert r.status_code == 202, r.text
        return r.json()["run_id"]


def register(served: ServedApi, definition: dict[str, Any]) -> str:
    with _client(served) as c:
        wf = c.post("/api/workflows", json=definition)
        assert wf.status_code == 201, wf.text
        return wf.json()["workflow_id"]


def explain_until(served: ServedApi, run_id: str, ok: Callable[[dict[str, Any]], bool],
                  timeout_s: float = 60.0) -> dict[str, Any]:
    """Explain the run until `ok` holds for the answer."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    with _client(served) as c:
        while time.monotonic() < deadline:
            r = c.get(f"/api/executions/{run_id}/explain")
            last = r.json() if r.status_code == 200 else r.text
            if r.status_code == 200 and ok(last):
                return last
            time.sleep(0.5)
    raise AssertionError(f"explanation of {run_id} never matched: {last}")


def kinds(found: dict[str, Any]) -> list[str]:
    return [r["kind"] for r in found["reasons"]]


def reason(found: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in found["reasons"] if r["kind"] == kind)


def has(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda found: kind in kinds(found)


NAP = {"name": "napper", "steps": [{"id": "nap", "type": "delay", "duration": "60s"},
                                   {"id": "after", "type": "transform", "expression": "'ok'",
                                    "after": ["nap"]}]}


def test_a_delay_step_waits_on_a_timer_until_its_due_time(stack: Stack) -> None:
    run_id = start(stack[1], NAP)
    found = explain_until(stack[1], run_id, has("timer"))
    r = reason(found, "timer")
    assert found["status"] == "running" and r["details"]["purpose"] == "delay"
    until = datetime.fromisoformat(r["until"])
    assert 40 < (until - datetime.fromisoformat(found["explained_at"])).total_seconds() <= 60


def test_a_failing_tool_waits_for_its_retry_back_off(stack: Stack) -> None:
    flaky = {"name": "flaky", "steps": [
        {"id": "try_it", "type": "tool", "component": "flaky@1", "inputs": {"fail_attempts": 9},
         "retry": {"max_attempts": 3, "initial_interval": "60s", "jitter": 0}}]}
    run_id = start(stack[1], flaky)
    found = explain_until(stack[1], run_id, has("timer"))
    r = reason(found, "timer")
    assert r["details"]["purpose"] == "retry" and r["details"]["step_id"] == "try_it"
    assert "attempt 2" in r["message"] and "FlakyFailure" in r["message"] and r["until"]


def test_an_http_step_against_a_failing_server_waits_for_the_open_circuit(
        stack: Stack, target: ServerHandle) -> None:
    failing = {"name": "caller", "steps": [
        {"id": "call", "type": "http", "url": f"{target.url}/fail",
         "retry": {"max_attempts": 12, "initial_interval": "100ms", "backoff": 2,
                   "max_interval": "20s", "jitter": 0}}]}
    run_id = start(stack[1], failing)
    found = explain_until(stack[1], run_id, has("circuit_open"), timeout_s=60)
    r = reason(found, "circuit_open")
    assert r["details"]["target"] == target.url and r["details"]["consecutive_failures"] >= 5
    assert datetime.fromisoformat(r["until"]) > datetime.fromisoformat(found["explained_at"])


def test_a_parent_waits_on_its_child_run_and_the_child_on_its_timer(stack: Stack) -> None:
    child_id = register(stack[1], {**NAP, "name": f"child-{uuid.uuid4().hex[:6]}"})
    parent = {"name": "parent", "steps": [
        {"id": "call", "type": "subworkflow", "workflow": child_id, "input": {}}]}
    run_id = start(stack[1], parent)
    found = explain_until(stack[1], run_id, lambda f: has("child_run")(f) and reason(
        f, "child_run")["details"]["child_status"] == "running")
    child_run = reason(found, "child_run")["details"]["child_run_id"]
    child = explain_until(stack[1], child_run, has("timer"))
    assert reason(child, "timer")["details"]["purpose"] == "delay"


def test_a_dead_lettered_command_of_the_run_is_reported(stack: Stack) -> None:
    run_id = start(stack[1], NAP)
    explain_until(stack[1], run_id, has("timer"))

    async def garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack[0].settings.kafka.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(f"{stack[0].settings.kafka.topic_prefix}.commands",
                                         b"\x00not avro", key=run_id.encode())
        finally:
            await producer.stop()

    asyncio.run(garbage())
    found = explain_until(stack[1], run_id, has("dead_lettered"))
    r = reason(found, "dead_lettered")
    assert r["details"]["source_topic"].endswith(".commands")
    assert "timer" in kinds(found)  # still waits on its delay too


def test_a_finished_run_says_how_it_ended_and_the_cli_prints_it(stack: Stack) -> None:
    done = {"name": "quick", "steps": [{"id": "t", "type": "transform", "expression": "'x'"}]}
    run_id = start(stack[1], done)
    found = explain_until(stack[1], run_id, has("run_finished"))
    assert found["status"] == "completed" and kinds(found) == ["run_finished"]
    env = {"BEND_API_URL": stack[1].url, "BEND_API_KEY": stack[1].admin_key}
    result = CliRunner().invoke(cli, ["runs", "explain", run_id], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "run_finished" in result.output and "completed" in result.output
    missing = CliRunner().invoke(cli, ["runs", "explain", "no-such-run"], env=env)
    assert missing.exit_code != 0 and "no-such-run" in missing.output + missing.stderr


def test_an_unknown_run_is_404(stack: Stack) -> None:
    with _client(stack[1]) as c:
        r = c.get("/api/executions/no-such-run/explain")
    assert r.status_code == 404 and r.json()["error"] == "unknown_run"


def test_zz_with_its_executor_stopped_a_step_has_no_consumer(stack: Stack) -> None:
    engine, served = stack
    for p in engine.workers.processes:
        if p.role == "executor":
            p.stop()
    tool = {"name": "tooled", "steps": [
        {"id": "t", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}}]}
    run_id = start(served, tool)
    found = explain_until(served, run_id, lambda f: has("no_consumer")(f) and reason(
        f, "no_consumer")["details"]["role"] == "executor")
    waiting = reason(found, "waiting_for_executor")
    assert waiting["details"]["lag"] >= 1 and waiting["details"]["step_id"] == "t"
    assert reason(found, "no_consumer")["details"]["partition"] == found["partition"]


def test_a_step_beyond_the_executor_concurrency_waits_for_a_slot(
        tight: Stack, target: ServerHandle) -> None:
    slow = {"name": "slow", "steps": [
        {"id": "call", "type": "http", "url": f"{target.url}/slow?s=25", "timeout": "40s"}]}
    first = [start(tight[1], slow) for _ in range(2)]
    for run_id in first:
        explain_until(tight[1], run_id, has("step_running"))
    third = start(tight[1], slow)
    found = explain_until(tight[1], third, has("concurrency_limit"))
    r = reason(found, "concurrency_limit")
    assert r["details"]["executors"][0]["in_flight"] == 2
    assert r["details"]["executors"][0]["limit"] == 2


def test_a_stalled_orchestrator_leaves_the_run_behind_on_its_partition(tight: Stack) -> None:
    engine, served = tight
    run_id = start(served, NAP)
    explain_until(served, run_id, has("timer"))
    orchestrator = next(p for p in engine.workers.processes if p.role == "orchestrator")
    os.kill(orchestrator.pid, signal.SIGSTOP)
    try:
        asyncio.run(_send_fire_timers(engine, run_id, 3))
        found = explain_until(served, run_id, lambda f: has("orchestrator_lag")(f) and reason(
            f, "orchestrator_lag")["details"]["lag"] >= 3, timeout_s=20)
        assert "no_consumer" not in kinds(found)  # the stalled process still holds it
        assert reason(found, "orchestrator_lag")["details"]["partition"] == 0
    finally:
        os.kill(orchestrator.pid, signal.SIGCONT)


async def _send_fire_timers(engine: Engine, run_id: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=engine.settings.kafka.bootstrap)
    await producer.start()
    try:
        for i in range(count):
            cmd = FireTimer(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf",
                            occurred_at=datetime.now().astimezone(), timer_id=f"bogus-{i}")
            await producer.send_and_wait(f"{engine.settings.kafka.topic_prefix}.commands",
                                         encode(cmd), key=run_id.encode())
    finally:
        await producer.stop()
