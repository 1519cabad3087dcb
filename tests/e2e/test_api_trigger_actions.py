"""Trigger actions through the API on the real Kafka and Postgres: a schedule's backfill fires
each due time once (capped), a Kafka trigger's replay is recorded, and failures show in the
trigger's state and its error list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.core.events import TriggerFailed, TriggerReplayRequested
from bend.kafka.producer import RecordProducer
from bend.settings import get_settings
from tests.e2e.test_api_triggers import created, trigger_records, workflow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOURLY = {"type": "schedule", "schedule": {"cron": "0 * * * *", "timezone": "UTC"},
          "input": {"from": "backfill"}}
KAFKA = {"type": "kafka", "topic": "shop.orders", "filter": "kind == 'order'"}


@pytest.fixture(scope="module")
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


async def _backfill(api: RunningApi, trigger_id: str, start: str, end: str,
                    **extra: object) -> tuple[int, dict]:
    r = await api.client.post(f"/api/triggers/{trigger_id}/backfill",
                              json={"start": start, "end": end, **extra})
    return r.status_code, r.json()


async def test_a_backfill_fires_each_past_due_time_once_within_its_cap(api: RunningApi) -> None:
    trigger_id = await created(api, await workflow(api), HOURLY)
    status, first = await _backfill(api, trigger_id, "2026-01-01T00:00:00Z",
                                    "2026-01-01T03:00:00Z")
    assert status == 202, first
    assert [(r["due_at"], r["status"]) for r in first["runs"]] == [
        (f"2026-01-01T0{h}:00:00Z", "started") for h in (0, 1, 2)]
    async with asyncio.timeout(20):  # the projection catches up
        while (await api.client.get(f"/api/triggers/{trigger_id}")).json()[
                "state"]["fire_count"] < 3:
            await asyncio.sleep(0.2)
    status, again = await _backfill(api, trigger_id, "2026-01-01T02:00:00+01:00",
                                    "2026-01-01T05:00:00Z")  # 01:00Z to 05:00Z
    assert status == 202, again
    assert [r["status"] for r in again["runs"]] == [
        "already_fired", "already_fired", "started", "started"]
    assert again["runs"][1]["run_id"] == first["runs"][2]["run_id"]
    assert (again["started"], again["already_fired"]) == (2, 2)
    state = (await api.client.get(f"/api/triggers/{trigger_id}")).json()["state"]
    assert state["last_due_at"] is not None

    status, body = await _backfill(api, trigger_id, "2026-01-01T00:00:00Z",
                                   "2026-01-02T00:00:00Z", max_runs=10)
    assert status == 422 and "more than 10 due times" in body["detail"]
    status, body = await _backfill(api, trigger_id, "2026-01-01T00:00:00Z",
                                   "2999-01-01T00:00:00Z")
    assert status == 422 and "in the future" in body["detail"]
    status, body = await _backfill(api, trigger_id, "2026-01-01T00:00:00", "2026-01-02T00:00Z")
    assert status == 422  # a time without its offset


async def test_a_replay_is_recorded_for_kafka_triggers_only(api: RunningApi) -> None:
    workflow_id = await workflow(api)
    kafka_id = await created(api, workflow_id, KAFKA)
    r = await api.client.post(f"/api/triggers/{kafka_id}/replay",
                              json={"from_offset": 5, "partition": 1, "force": True})
    assert r.status_code == 202, r.text
    records = await trigger_records(api, kafka_id, 2)
    replay = records[1][1]
    assert isinstance(replay, TriggerReplayRequested)
    assert (replay.replay_id, replay.from_offset, replay.partition, replay.force) == (
        r.json()["replay_id"], 5, 1, True)
    assert records[1][0] == kafka_id.encode()

    r = await api.client.post(f"/api/triggers/{kafka_id}/replay",
                              json={"from_offset": 1, "from_time": "2026-01-01T00:00:00Z"})
    assert r.status_code == 422
    schedule_id = await created(api, workflow_id, HOURLY)
    r = await api.client.post(f"/api/triggers/{schedule_id}/replay", json={"from_offset": 0})
    assert r.status_code == 409 and r.json()["error"] == "trigger_type_mismatch"
    _, body = await _backfill(api, kafka_id, "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z")
    assert body["error"] == "trigger_type_mismatch"


async def test_failures_show_in_the_trigger_state_and_its_error_list(api: RunningApi) -> None:
    workflow_id = await workflow(api)
    trigger_id = await created(api, workflow_id, KAFKA)
    at = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    async with RecordProducer(api.settings) as producer:
        for n, stage in enumerate(["decode", "filter"]):
            position = await producer.send(TriggerFailed(
                event_id=f"{trigger_id}-{n}", workflow_id=workflow_id, occurred_at=at.replace(
                    minute=n), trigger_id=trigger_id, trigger_type="kafka", stage=stage,
                error=f"bad record {n}", source=f"shop.orders/0/{n}"))
    view = (await api.client.get(f"/api/triggers/{trigger_id}",
                                 params={"wait_for": position.token})).json()
    assert view["state"]["error_count"] == 2
    assert view["state"]["last_error"] == "filter: bad record 1"
    assert view["state"]["last_error_at"].startswith("2026-03-01T12:01:00")
    errors = (await api.client.get(f"/api/triggers/{trigger_id}/errors")).json()["items"]
    assert [(e["stage"], e["source"]) for e in errors] == [
        ("filter", "shop.orders/0/1"), ("decode", "shop.orders/0/0")]
    listed = (await api.client.get(f"/api/workflows/{workflow_id}/triggers")).json()["items"]
    assert listed[0]["state"]["error_count"] == 2
