"""Rebuilding the read model from Kafka while the API serves and the projector runs: the rebuilt
tables equal the live ones table by table, the switch is atomic, and both keep working after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bend.server.testing import RunningApi, api_beside
from bend.devstack.engine import Engine
from bend.replay.projections import RebuildRefused, new_status, rebuild_projections
from projections.db import database_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

GREETER: dict[str, Any] = {
    "name": "greeter",
    "steps": [
        {"id": "greet", "type": "transform", "expression": "join(' ', ['hello', input.who])"},
        {"id": "shout", "type": "transform", "mapping": {"text": "steps.greet.output"}},
    ],
}


@pytest.fixture()
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    async with api_beside(engine.settings, ready_s=30) as running:
        yield running


async def _run(api: RunningApi, workflow_id: str, who: str,
               headers: dict[str, str] | None = None) -> str:
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute", json={"input": {"who": who}},
                              headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["run_id"]


async def _until_completed(api: RunningApi, run_ids: list[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    for run_id in run_ids:
        while True:
            r = await api.client.get(f"/api/executions/{run_id}")
            if r.status_code == 200 and r.json()["status"] == "completed":
                break
            assert time.monotonic() < deadline, f"{run_id} did not complete: {r.text}"
            await asyncio.sleep(0.1)


async def _workflow(api: RunningApi) -> str:
    wf = (await api.client.post("/api/workflows", json=GREETER)).json()
    r = await api.client.get(f"/api/workflows/{wf['workflow_id']}",
                             params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 200, r.text
    return wf["workflow_id"]


async def test_a_rebuild_from_kafka_equals_the_live_tables_and_switches_while_the_api_serves(
        api: RunningApi) -> None:
    workflow_id = await _workflow(api)
    runs = [await _run(api, workflow_id, f"w{i}") for i in range(8)]
    await _until_completed(api, runs)

    answers: list[int] = []
    traffic_runs: list[str] = []
    stop = asyncio.Event()

    user = api.headers(await api.key("operator"))  # its own rate limit

    async def traffic() -> None:  # users keep starting and reading runs through the rebuild
        i = 0
        while not stop.is_set():
            traffic_runs.append(await _run(api, workflow_id, f"t{i}", user))
            answers.append((await api.client.get(f"/api/executions/{runs[i % 8]}",
                                                 headers=user)).status_code)
            answers.append((await api.client.get("/api/executions", headers=user)).status_code)
            i += 1
            await asyncio.sleep(0.2)

    load = asyncio.create_task(traffic())
    r = await api.client.post("/api/replay/projections", json={})
    assert r.status_code == 202, r.text
    rebuild_id = r.json()["rebuild_id"]
    seen_phases = set()
    deadline = time.monotonic() + 120
    while True:
        status = (await api.client.get(f"/api/replay/projections/{rebuild_id}")).json()
        seen_phases.add(status["phase"])
        if status["phase"] in {"switched", "refused", "failed"}:
            break
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)
    stop.set()
    await load
    assert status["phase"] == "switched", status
    assert status["compared"] and status["identical"], status["differences"]
    assert {"runs", "run_events", "steps", "workflows", "projection_offsets"} <= set(
        status["tables"])
    assert status["records"] > 0 and status["events_per_second"] > 0
    assert set(answers) == {200}, answers  # the API answered every read, during and after

    # After the switch: the projector writes to the rebuilt tables, the API reads them.
    after = [await _run(api, workflow_id, f"after{i}") for i in range(3)]
    await _until_completed(api, [*traffic_runs, *after])
    conn = await asyncpg.connect(database_url(api.settings))
    try:
        live = api.settings.database.schema_name
        retired = status["retired_schema"]
        assert await conn.fetchval(f"SELECT count(*) FROM {live}.runs WHERE run_id = ANY($1)",
                                   after) == 3
        assert await conn.fetchval(f"SELECT count(*) FROM {retired}.runs WHERE run_id = ANY($1)",
                                   after) == 0
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", status["rebuilt_schema"]) == 0
    finally:
        await conn.close()


async def test_rebuild_status_needs_the_admin_role_and_a_known_id(api: RunningApi) -> None:
    operator = api.headers(await api.key("operator"))
    r = await api.client.post("/api/replay/projections", json={}, headers=operator)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.client.get("/api/replay/projections/nope")
    assert r.status_code == 404 and r.json()["error"] == "unknown_rebuild"
    r = await api.client.post("/api/replay/projections", json={"only": "nope"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_projection"


async def test_a_damaged_projection_is_reported_table_by_table_and_replaced_only_when_accepted(
        api: RunningApi) -> None:
    workflow_id = await _workflow(api)
    runs = [await _run(api, workflow_id, f"d{i}") for i in range(3)]
    await _until_completed(api, runs)
    settings = api.settings
    live = settings.database.schema_name
    conn = await asyncpg.connect(database_url(settings))
    try:
        await conn.execute(f"UPDATE {live}.runs SET status = 'failed' WHERE run_id = $1", runs[0])
        refused = new_status(settings, "runs")
        with pytest.raises(RebuildRefused, match="runs"):
            await rebuild_projections(settings, refused)
        assert refused.phase == "refused" and refused.compared
        assert [d.table for d in refused.differences] == ["runs"]
        assert refused.differences[0].only_live == refused.differences[0].only_rebuilt == 1
        assert await conn.fetchval(f"SELECT status FROM {live}.runs WHERE run_id = $1",
                                   runs[0]) == "failed"  # untouched

        fixed = await rebuild_projections(settings, new_status(settings, "runs"),
                                          accept_differences=True)
        assert fixed.phase == "switched" and [d.table for d in fixed.differences] == ["runs"]
        assert fixed.tables == ["runs", "run_events"]
        assert await conn.fetchval(f"SELECT status FROM {live}.runs WHERE run_id = $1",
                                   runs[0]) == "completed"
        r = await api.client.get(f"/api/executions/{runs[0]}")
        assert r.status_code == 200 and r.json()["status"] == "completed"
        # The other projections' tables stayed where they were.
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1", fixed.retired) == 2
    finally:
        await conn.close()
