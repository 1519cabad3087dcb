"""Chaining end to end: the real engine and projector, the chainer in this process. A finished
run starts its downstream workflow with input mapped from its output, recorded as the child's
trigger; the run log read again by a second chainer starts nothing twice."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bend.core.chaining import downstream_run_id
from bend.devstack.engine import Engine, running_engine
from bend.server.testing import RunningApi
from streams.chaining import Chainer
from tests.e2e.waiting import running as running_task, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    with running_engine(executors=0) as engine:
        yield engine


@contextlib.asynccontextmanager
async def chainer(api: RunningApi, group: str) -> AsyncIterator[Chainer]:
    running = Chainer(api.settings, group_id=group)
    async with running_task(running):
        yield running



async def register(api: RunningApi, definition: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def test_a_finished_run_starts_its_downstream_workflow_once(api: RunningApi) -> None:
    publish = await register(api, {"name": "publish", "steps": [
        {"id": "shout", "type": "transform", "expression": "{text: input.text, n: input.n}"}]})
    wf = await register(api, {"name": "report", "steps": [
        {"id": "a", "type": "transform", "expression": "{summary: input.topic, n: `3`}"}],
        "output": "steps.a.output", "downstream": [
            {"workflow": "publish", "input": "{text: output.summary, n: output.n}"},
            {"workflow": "publish", "on_end": ["failed"]},
            {"workflow": "no_such_workflow"}]})
    async with chainer(api, f"{api.settings.kafka.topic_prefix}-c1") as first:
        r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                                  json={"input": {"topic": "chains"}},
                                  params={"wait_for": wf["position"]["token"]})
        assert r.status_code == 202, r.text
        parent = r.json()["run_id"]
        child_id = downstream_run_id(parent, 0)

        async def child() -> dict[str, Any] | None:
            got = await api.client.get(f"/api/executions/{child_id}")
            run = got.json() if got.status_code == 200 else None
            return run if run and run["status"] == "completed" else None

        run = await until(child)
        assert run["workflow_id"] == publish["workflow_id"]
        assert run["input"] == {"text": "chains", "n": 3}
        assert run["output"] == {"shout": {"text": "chains", "n": 3}}
        assert run["trigger_id"] == f"downstream:{parent}"
        assert first.started == 1  # the failure entry did not start; the unknown one neither
        read = first.read

    async with chainer(api, f"{api.settings.kafka.topic_prefix}-c2") as again:
        async def caught_up() -> bool:
            return again.read >= read

        await until(caught_up)
        assert again.started == 0
    events = (await api.client.get(f"/api/executions/{child_id}/events")).json()["items"]
    assert [e["event_type"] for e in events].count("RunRequested") == 1
    runs = (await api.client.get("/api/executions",
                                 params={"workflow_id": publish["workflow_id"]})).json()
    assert [r["run_id"] for r in runs["items"]] == [child_id]
