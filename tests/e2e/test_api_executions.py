"""The REST API's execution endpoints on the real Kafka and Postgres: a run started through the
API, its events produced as the orchestrator would, read back as status, steps, events, logs
(also followed as server-sent events) and a graph."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.core.events import (
    AgentLlmCallRecorded, Event, RunCompleted, RunRequested, RunStarted, StepFailed,
    StepRetryScheduled, StepScheduled, StepStarted, StepSucceeded,
)
from bend.kafka.producer import RecordProducer
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEFINITION: dict[str, Any] = {
    "name": "two steps",
    "steps": [
        {"id": "greet", "type": "transform", "expression": "'hello'"},
        {"id": "shout", "type": "transform", "expression": "steps.greet.output"},
    ],
}
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture()
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


async def started(api: RunningApi, run_input: Any = None) -> dict[str, Any]:
    """A workflow created and executed through the API; the run as the execute answered."""
    wf = (await api.client.post("/api/workflows", json=DEFINITION)).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": run_input or {"n": 1}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    return {**r.json(), "definition": (await api.client.get(
        f"/api/workflows/{wf['workflow_id']}")).json()["definition"]}


def orchestrated(run: dict[str, Any]) -> list[Event]:
    """What the orchestrator records for the run: greet retries once, then all succeeds."""
    seq = iter(range(1, 100))
    env = {"run_id": run["run_id"], "workflow_id": run["workflow_id"],
           "workflow_version": run["workflow_version"]}

    def ev(cls: type, minutes: float, **fields: Any) -> Event:
        return cls(event_id=str(uuid.uuid4()), seq=next(seq),
                   occurred_at=T0 + timedelta(minutes=minutes), **env, **fields)

    return [
        ev(RunRequested, 0, input={"n": 1}, definition=run["definition"]),
        ev(RunStarted, 1),
        ev(StepScheduled, 1, step_id="greet", node_type="transform", attempt=1),
        ev(StepStarted, 1, step_id="greet", attempt=1, worker_id="w1"),
        ev(AgentLlmCallRecorded, 1.5, step_id="greet", attempt=1, call_index=0, model="m",
           prompt_tokens=11, completion_tokens=7, latency_ms=30),
        ev(StepFailed, 2, step_id="greet", attempt=1, error_type="Timeout", message="slow",
           retryable=True),
        ev(StepRetryScheduled, 2, step_id="greet", next_attempt=2, retry_at=T0, delay_ms=50),
        ev(StepScheduled, 3, step_id="greet", node_type="transform", attempt=2),
        ev(StepSucceeded, 4, step_id="greet", attempt=2, output="hello", duration_ms=5),
        ev(StepScheduled, 5, step_id="shout", node_type="transform", attempt=1),
        ev(StepSucceeded, 6, step_id="shout", attempt=1, output="HELLO", duration_ms=3),
        ev(RunCompleted, 7, output={"shout": "HELLO"}, duration_ms=360_000),
    ]


async def produce(api: RunningApi, events: list[Event]) -> str:
    """Produce events; the wait_for token of the last."""
    async with RecordProducer(api.settings) as producer:
        positions = await producer.send_many(events)
    return positions[-1].token


async def test_a_finished_run_shows_its_status_output_steps_and_usage(api: RunningApi) -> None:
    run = await started(api)
    token = await produce(api, orchestrated(run))
    r = await api.client.get(f"/api/executions/{run['run_id']}", params={"wait_for": token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["output"], body["duration_ms"]) == (
        "completed", {"shout": "HELLO"}, 360_000)
    assert body["last_seq"] == 12
    steps = {s["step_id"]: s for s in body["steps"]}
    assert (steps["greet"]["status"], steps["greet"]["attempts"], steps["greet"]["output"]) == (
        "succeeded", 2, "hello")
    assert steps["shout"]["output"] == "HELLO"
    assert body["usage"] == [{"model": "m", "calls": 1, "prompt_tokens": 11,
                              "completion_tokens": 7, "latency_ms": 30}]


async def test_events_come_in_seq_order_with_their_log_positions_and_page_by_seq(
        api: RunningApi) -> None:
    run = await started(api)
    token = await produce(api, orchestrated(run))
    path = f"/api/executions/{run['run_id']}/events"
    first = (await api.client.get(path, params={"wait_for": token, "limit": 5})).json()
    rest = (await api.client.get(path, params={"after_seq": first["next_after_seq"]})).json()
    seqs = [e["seq"] for e in first["items"] + rest["items"]]
    assert seqs == list(range(1, 13))
    assert first["items"][0]["event_type"] == "RunRequested"
    assert first["items"][0]["position"]["topic"].endswith(".run-events")
    assert rest["items"][-1]["payload"]["output"] == {"shout": "HELLO"}


async def test_logs_render_each_event_and_filter_by_level_and_step(api: RunningApi) -> None:
    run = await started(api)
    token = await produce(api, orchestrated(run))
    path = f"/api/executions/{run['run_id']}/logs"
    lines = (await api.client.get(path, params={"wait_for": token})).json()["items"]
    assert len(lines) == 12 and lines[-1]["message"] == "run completed in 360000 ms"
    warnings = (await api.client.get(path, params={"level": "warning"})).json()["items"]
    assert [(w["level"], w["event_type"]) for w in warnings] == [
        ("error", "StepFailed"), ("warning", "StepRetryScheduled")]
    assert warnings[0]["message"] == "step greet attempt 1 failed (will retry): Timeout: slow"
    shout = (await api.client.get(path, params={"step_id": "shout"})).json()["items"]
    assert {line["step_id"] for line in shout} == {"shout"} and len(shout) == 2


async def test_following_a_run_streams_its_events_as_they_are_applied_until_it_ends(
        api: RunningApi) -> None:
    run = await started(api)
    events = orchestrated(run)
    token = await produce(api, events[:4])
    path = f"/api/executions/{run['run_id']}/events"
    await api.client.get(path, params={"wait_for": token})
    follow = asyncio.create_task(api.client.get(path, params={"follow": "true",
                                                              "follow_s": 30}))
    await asyncio.sleep(0.5)
    assert not follow.done(), "the stream ended before the run did"
    await produce(api, events[4:])
    r = await asyncio.wait_for(follow, 30)
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in r.text.split("\n\n") if f.strip()]
    kinds = [line.removeprefix("event: ") for f in frames for line in f.splitlines()
             if line.startswith("event: ")]
    assert kinds == [e.event_type for e in events] + ["end"]
    resumed = await api.client.get(path, params={"follow": "true"},
                                   headers={"Last-Event-ID": "10"})
    assert [line for line in resumed.text.splitlines() if line.startswith("id: ")] == [
        "id: 11", "id: 12", "id: 12"]


async def test_the_graph_draws_the_definitions_steps_with_their_state(api: RunningApi) -> None:
    run = await started(api)
    events = orchestrated(run)
    token = await produce(api, events[:9])  # greet done, shout not scheduled yet
    graph = (await api.client.get(f"/api/executions/{run['run_id']}/graph",
                                  params={"wait_for": token})).json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert (nodes["greet"]["status"], nodes["greet"]["attempts"]) == ("succeeded", 2)
    assert nodes["shout"]["status"] == "not_started"
    assert graph["edges"] == [{"source": "greet", "target": "shout", "kind": "after"}]
    assert graph["status"] == "running"


async def test_runs_are_listed_by_workflow_status_and_time_with_a_cursor(
        api: RunningApi) -> None:
    run = await started(api)
    token = await produce(api, orchestrated(run))
    others = [await started(api, {"n": i}) for i in range(3)]
    wait = [token, *(o["position"]["token"] for o in others)]
    done = (await api.client.get("/api/executions", params={"status": "completed",
                                                            "wait_for": wait})).json()
    assert [r["run_id"] for r in done["items"]] == [run["run_id"]]
    queued = (await api.client.get("/api/executions", params={"status": "queued",
                                                              "limit": 2})).json()
    more = (await api.client.get("/api/executions", params={
        "status": "queued", "limit": 2, "cursor": queued["next_cursor"]})).json()
    assert {r["run_id"] for r in queued["items"] + more["items"]} == {
        o["run_id"] for o in others}
    window = (await api.client.get("/api/executions", params={
        "since": (T0 - timedelta(minutes=1)).isoformat(),
        "until": (T0 + timedelta(minutes=1)).isoformat()})).json()
    assert [r["run_id"] for r in window["items"]] == [run["run_id"]]
    by_workflow = (await api.client.get("/api/executions", params={
        "workflow_id": others[0]["workflow_id"]})).json()
    assert [r["run_id"] for r in by_workflow["items"]] == [others[0]["run_id"]]


async def test_a_finished_run_cannot_be_cancelled(api: RunningApi) -> None:
    run = await started(api)
    token = await produce(api, orchestrated(run))
    r = await api.client.post(f"/api/executions/{run['run_id']}/cancel",
                              params={"wait_for": token})
    assert (r.status_code, r.json()["error"], r.json()["run_status"]) == (
        409, "run_finished", "completed")
