"""Bulk execute bounds its work: runs per request, bytes of commands produced (each carries the
pinned definition), and records in flight at once; over a limit it answers 413 with the limit
and sends nothing. Real Kafka and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import ApiSettings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEFINITION: dict[str, Any] = {
    "name": "bulky",
    "steps": [{"id": "greet", "type": "transform", "expression": "join(' ', ['hi', input.who])"}],
}


@pytest.fixture()
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    base = isolated_settings(get_settings())
    limits = base.api.model_copy(update={"bulk_max_runs": 5, "bulk_max_bytes": 8_000,
                                         "bulk_produce_concurrency": 2})
    settings = base.model_copy(update={"api": limits})
    try:
        async with running_api(settings, projector=True) as running:
            yield running
    finally:
        await drop_isolated(settings)


async def _workflow(api: RunningApi) -> str:
    wf = (await api.client.post("/api/workflows", json=DEFINITION)).json()
    r = await api.client.get(f"/api/workflows/{wf['workflow_id']}",
                             params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 200, r.text
    return wf["workflow_id"]


async def test_a_bulk_over_the_run_or_byte_limit_is_refused_with_413_and_sends_nothing(
        api: RunningApi) -> None:
    workflow_id = await _workflow(api)
    before = await api.log_ends()

    r = await api.client.post(f"/api/workflows/{workflow_id}/execute/bulk",
                              json={"inputs": [{"who": str(i)} for i in range(6)]})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert (problem["error"], problem["count"], problem["limit"]) == ("bulk_too_many_runs", 6, 5)
    assert "BEND_API__BULK_MAX_RUNS" in problem["detail"]

    # 4 runs, each of 2,500 bytes of input: a small body, but over 8,000 bytes of commands.
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute/bulk",
                              json={"inputs": [{"who": "x" * 2_500} for _ in range(4)]})
    assert r.status_code == 413, r.text
    problem = r.json()
    assert problem["error"] == "bulk_too_large" and problem["limit"] == 8_000
    assert problem["bytes"] > 8_000 and problem["count"] == 4

    # Past the request's own ceiling (1000 inputs), the body is refused as it is read.
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute/bulk",
                              json={"inputs": [{}] * 1001})
    assert r.status_code == 422, r.text
    assert await api.log_ends() == before  # nothing was produced


async def test_a_bulk_at_the_limits_produces_in_bounded_batches_in_input_order(
        api: RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow_id = await _workflow(api)
    producer = api.app.state.bend.producer
    batches: list[int] = []
    send_many = producer.send_many

    async def counted(records: Any) -> Any:
        batches.append(len(records))
        return await send_many(records)

    monkeypatch.setattr(producer, "send_many", counted)
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute/bulk",
                              json={"inputs": [{"who": str(i)} for i in range(5)],
                                    "idempotency_key": "limits"})
    assert r.status_code == 202, r.text
    assert batches == [2, 2, 1]  # never more than bulk_produce_concurrency in flight
    runs = r.json()["runs"]
    listed = (await api.client.get("/api/executions", params={
        "workflow_id": workflow_id, "limit": 10,
        "wait_for": [x["position"]["token"] for x in runs]})).json()["items"]
    assert {x["run_id"] for x in listed} == {x["run_id"] for x in runs}
    inputs = {x["run_id"]: x["input"]["who"] for x in [
        (await api.client.get(f"/api/executions/{x['run_id']}")).json() for x in runs]}
    assert [inputs[x["run_id"]] for x in runs] == ["0", "1", "2", "3", "4"]


def test_the_bulk_run_limit_cannot_exceed_the_request_ceiling() -> None:
    with pytest.raises(ValidationError):
        ApiSettings(bulk_max_runs=1001)
    assert ApiSettings().bulk_max_runs == 1000
