"""The triggers endpoints on the real Kafka and Postgres: definitions checked with every problem,
TriggerRegistered/Updated/Removed on the triggers topic keyed by trigger id, the read model
(definition, enabled, firings, next due time), webhook paths, roles and projects."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.contracts.codec import decode
from bend.contracts.topics import topic_name
from bend.core.events import TriggerFired, TriggerRegistered, TriggerRemoved, TriggerUpdated
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WORKFLOW: dict[str, Any] = {
    "name": "nightly",
    "steps": [{"id": "hello", "type": "transform", "expression": "'hello'"}],
}
SCHEDULE = {"type": "schedule", "schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}}


@pytest.fixture(scope="module")
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    # The module's tests share one admin key and send it more than the 40-request burst a key
    # gets by default within a second or two: a run was refused 429 (rate_limited) in a full
    # run. Rate limits have tests of their own (test_api_security_limits, test_rate_limits_shared).
    base = get_settings()
    security = base.security.model_copy(update={"key_burst": 10_000, "key_rate_per_s": 1_000.0})
    settings = isolated_settings(base.model_copy(update={"security": security}))
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


async def created(api: RunningApi, workflow_id: str, definition: dict[str, Any]) -> str:
    """A trigger of the workflow, readable at once; its id."""
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                              json={"definition": definition})
    assert r.status_code == 201, r.text
    await api.client.get(f"/api/triggers/{r.json()['trigger_id']}",
                         params={"wait_for": r.json()["position"]["token"]})
    return r.json()["trigger_id"]


async def workflow(api: RunningApi) -> str:
    r = await api.client.post("/api/workflows", json=WORKFLOW)
    assert r.status_code == 201, r.text
    await api.client.get(f"/api/workflows/{r.json()['workflow_id']}",
                         params={"wait_for": r.json()["position"]["token"]})
    return r.json()["workflow_id"]


async def trigger_records(api: RunningApi, trigger_id: str,
                          count: int) -> list[tuple[bytes | None, Any]]:
    """The first `count` records of the triggers topic about `trigger_id`: (key, record)."""
    topic = topic_name("triggers", api.settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=api.settings.kafka.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in range(api.settings.kafka.default_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[tuple[bytes | None, Any]] = []
        async with asyncio.timeout(20):
            while len(out) < count:
                batch = await consumer.getmany(timeout_ms=200)
                out += [(m.key, r) for ms in batch.values() for m in ms
                        if getattr(r := decode(m.value), "trigger_id", None) == trigger_id]
        return out
    finally:
        await consumer.stop()


async def test_a_schedule_trigger_is_registered_on_kafka_and_reads_back_with_its_next_due_time(
        api: RunningApi) -> None:
    workflow_id = await workflow(api)
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                              json={"definition": SCHEDULE})
    assert r.status_code == 201, r.text
    written = r.json()
    assert r.headers["Location"] == f"/api/triggers/{written['trigger_id']}"
    [(key, event)] = await trigger_records(api, written["trigger_id"], 1)
    assert key == written["trigger_id"].encode() and isinstance(event, TriggerRegistered)
    assert (event.workflow_id, event.trigger_type, event.definition["schedule"]["cron"]) == (
        workflow_id, "schedule", "0 9 * * 1-5")
    shown = (await api.client.get(f"/api/triggers/{written['trigger_id']}",
                                  params={"wait_for": written["position"]["token"]})).json()
    assert (shown["type"], shown["enabled"], shown["workflow_id"]) == (
        "schedule", True, workflow_id)
    assert shown["state"]["fire_count"] == 0 and shown["state"]["last_fired_at"] is None
    due = datetime.fromisoformat(shown["state"]["next_due_at"])
    assert due > datetime.now(timezone.utc) and due.astimezone(timezone.utc).minute == 0
    listed = (await api.client.get(f"/api/workflows/{workflow_id}/triggers")).json()["items"]
    assert [t["trigger_id"] for t in listed] == [written["trigger_id"]]


async def test_a_bad_definition_is_refused_with_every_problem_and_nothing_produced(
        api: RunningApi) -> None:
    workflow_id = await workflow(api)
    before = await api.log_ends()
    bad_schedule = {"type": "schedule",
                    "schedule": {"cron": "61 * * * *", "timezone": "Europe/Parsi"}}
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                              json={"definition": bad_schedule})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_trigger"
    assert {e["location"] for e in body["errors"]} == {"schedule.cron", "schedule.timezone"}
    assert "Europe/Paris" in body["detail"]  # the close name is offered
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                              json={"definition": {"type": "kafka", "topic": "orders",
                                                   "filter": "a[?"}})
    assert r.status_code == 422 and r.json()["errors"][0]["location"] == "filter"
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                              json={"definition": {"type": "webhook", "path": "no-secret"}})
    assert r.status_code == 422 and r.json()["errors"][0]["location"] == "secret_name"
    assert await api.log_ends() == before


async def test_a_schedules_next_fire_times_are_listed_and_none_once_it_is_disabled(
        api: RunningApi) -> None:
    workflow_id = await workflow(api)
    trigger_id = await created(api, workflow_id, SCHEDULE)
    r = await api.client.get(f"/api/triggers/{trigger_id}/next", params={"count": 7})
    assert r.status_code == 200, r.text
    times = [datetime.fromisoformat(at) for at in r.json()["items"]]
    assert len(times) == 7 and times == sorted(set(times))
    paris = ZoneInfo("Europe/Paris")
    assert all(t.astimezone(paris).hour == 9 and t.astimezone(paris).weekday() < 5
               for t in times)
    shown = (await api.client.get(f"/api/triggers/{trigger_id}")).json()
    assert datetime.fromisoformat(shown["state"]["next_due_at"]) == times[0]
    assert (await api.client.get(f"/api/triggers/{trigger_id}/next",
                                 params={"count": 0})).status_code == 422
    hook = await created(api, workflow_id, {"type": "webhook", "path": f"n-{uuid.uuid4().hex[:8]}",
                                             "secret_name": "HOOK"})
    assert (await api.client.get(f"/api/triggers/{hook}/next")).json()["items"] == []
    r = await api.client.put(f"/api/triggers/{trigger_id}",
                             json={"definition": SCHEDULE, "enabled": False})
    await api.client.get(f"/api/triggers/{trigger_id}",
                         params={"wait_for": r.json()["position"]["token"]})
    assert (await api.client.get(f"/api/triggers/{trigger_id}/next")).json()["items"] == []


async def test_disabling_and_removing_a_trigger_produce_updated_and_removed(
        api: RunningApi) -> None:
    workflow_id = await workflow(api)
    trigger_id = await created(api, workflow_id, SCHEDULE)
    r = await api.client.put(f"/api/triggers/{trigger_id}",
                             json={"definition": SCHEDULE, "enabled": False})
    assert r.status_code == 200 and r.json()["changed"] is True, r.text
    shown = (await api.client.get(f"/api/triggers/{trigger_id}",
                                  params={"wait_for": r.json()["position"]["token"]})).json()
    assert shown["enabled"] is False and shown["state"]["next_due_at"] is None
    before = await api.log_ends()
    again = await api.client.put(f"/api/triggers/{trigger_id}",
                                 json={"definition": SCHEDULE, "enabled": False})
    assert again.json()["changed"] is False and await api.log_ends() == before
    r = await api.client.delete(f"/api/triggers/{trigger_id}")
    assert r.status_code == 200 and r.json()["removed"] is True
    gone = await api.client.get(f"/api/triggers/{trigger_id}",
                                params={"wait_for": r.json()["position"]["token"]})
    assert gone.status_code == 404 and gone.json()["error"] == "unknown_trigger"
    events = [e for _, e in await trigger_records(api, trigger_id, 3)]
    assert [type(e) for e in events] == [TriggerRegistered, TriggerUpdated, TriggerRemoved]
    assert events[1].enabled is False


async def test_firings_move_the_state_count_last_fired_and_next_due(api: RunningApi) -> None:
    workflow_id = await workflow(api)
    hourly = {"type": "schedule", "schedule": {"cron": "0 * * * *"}}
    written = (await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                                     json={"definition": hourly})).json()
    trigger_id = written["trigger_id"]
    due = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    fired = TriggerFired(event_id=str(uuid.uuid4()), workflow_id=workflow_id,
                         occurred_at=due + timedelta(seconds=1), trigger_id=trigger_id,
                         trigger_type="schedule", dedupe_key=f"{trigger_id}@{due.isoformat()}",
                         due_at=due, project=api.settings.project)
    duplicate = dataclasses.replace(fired, event_id=str(uuid.uuid4()))  # a second scheduler's
    positions = await api.app.state.bend.producer.send_many([fired, duplicate])
    shown = (await api.client.get(f"/api/triggers/{trigger_id}",
                                  params={"wait_for": positions[-1].token})).json()
    state = shown["state"]
    assert state["fire_count"] == 1  # the same dedupe key counts once
    assert datetime.fromisoformat(state["last_due_at"]) == due
    assert datetime.fromisoformat(state["next_due_at"]) == due + timedelta(hours=1)


async def test_webhooks_are_listed_with_their_url_and_a_path_is_taken_once(
        api: RunningApi) -> None:
    workflow_id = await workflow(api)
    path = f"orders-{uuid.uuid4().hex[:8]}"
    hook = {"type": "webhook", "path": path, "secret_name": "ORDERS_HOOK",
            "required_headers": {"X-Event": "created"}}
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers", json={"definition": hook})
    assert r.status_code == 201, r.text
    assert r.json()["webhook_url"] == f"http://bend.test/webhooks/{path}"
    before = await api.log_ends()
    taken = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                                  json={"definition": hook})
    assert taken.status_code == 409 and taken.json()["error"] == "webhook_path_taken"
    assert await api.log_ends() == before
    hooks = (await api.client.get("/api/webhooks")).json()["items"]
    mine = [h for h in hooks if h["path"] == path]
    assert mine == [{"trigger_id": r.json()["trigger_id"], "workflow_id": workflow_id,
                     "path": path, "url": f"http://bend.test/webhooks/{path}", "enabled": True,
                     "secret_name": "ORDERS_HOOK", "required_headers": {"x-event": "created"}}]


async def test_viewers_read_triggers_but_cannot_write_them(api: RunningApi) -> None:
    workflow_id = await workflow(api)
    viewer = api.headers(await api.key("viewer"))
    before = await api.log_ends()
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers",
                              json={"definition": SCHEDULE}, headers=viewer)
    assert r.status_code == 403 and r.json()["error"] == "permission_denied"
    assert await api.log_ends() == before
    r = await api.client.get(f"/api/workflows/{workflow_id}/triggers", headers=viewer)
    assert r.status_code == 200


async def test_another_projects_triggers_and_workflows_are_not_found(api: RunningApi) -> None:
    workflow_id = await workflow(api)
    trigger_id = await created(api, workflow_id, SCHEDULE)
    stranger = api.headers(await api.key("admin", project="elsewhere"))
    before = await api.log_ends()
    for method, url, body in (
            ("GET", f"/api/triggers/{trigger_id}", None),
            ("PUT", f"/api/triggers/{trigger_id}", {"definition": SCHEDULE, "enabled": False}),
            ("DELETE", f"/api/triggers/{trigger_id}", None),
            ("GET", f"/api/workflows/{workflow_id}/triggers", None),
            ("POST", f"/api/workflows/{workflow_id}/triggers", {"definition": SCHEDULE})):
        r = await api.client.request(method, url, json=body, headers=stranger)
        assert r.status_code == 404, (method, url, r.text)
    assert await api.log_ends() == before
    assert (await api.client.get("/api/webhooks", headers=stranger)).json()["items"] == []


async def test_a_manual_triggers_default_input_fills_a_run_asked_for_without_one(
        api: RunningApi) -> None:
    workflow_id = await workflow(api)
    await created(api, workflow_id, {"type": "manual", "default_input": {"who": "default"}})
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute", json={})
    assert r.status_code == 202, r.text
    run = await api.client.get(f"/api/executions/{r.json()['run_id']}",
                               params={"wait_for": r.json()["position"]["token"]})
    assert run.json()["input"] == {"who": "default"}
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute",
                              json={"input": {"who": "given"}})
    assert r.status_code == 202, r.text
    run = await api.client.get(f"/api/executions/{r.json()['run_id']}",
                               params={"wait_for": r.json()["position"]["token"]})
    assert run.json()["input"] == {"who": "given"}  # a given input wins
    r = await api.client.post(f"/api/workflows/{workflow_id}/execute/bulk",
                              json={"inputs": [None, {"who": "b"}]})
    assert r.status_code == 202, r.text
    inputs = []
    for accepted in r.json()["runs"]:
        got = await api.client.get(f"/api/executions/{accepted['run_id']}",
                                   params={"wait_for": accepted["position"]["token"]})
        inputs.append(got.json()["input"])
    assert inputs == [{"who": "default"}, {"who": "b"}]
