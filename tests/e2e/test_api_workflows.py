"""The REST API's workflow endpoints on the real Kafka and Postgres, as a client uses them:
commands land on Kafka, reads come from the projections, `wait_for` reads your own writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.contracts.codec import decode
from bend.contracts.topics import topic_name
from bend.core.commands import CancelRun, StartRun
from bend.core.events import ComponentRegistered, WorkflowRegistered
from bend.settings import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEFINITION: dict[str, Any] = {
    "name": "greeter",
    "description": "says hello",
    "input_schema": {"type": "object", "required": ["who"],
                     "properties": {"who": {"type": "string"}}},
    "steps": [
        {"id": "greet", "type": "transform", "expression": "join(' ', ['hello', input.who])"},
        {"id": "shout", "type": "transform", "expression": "steps.greet.output"},
    ],
}


@pytest.fixture()
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


async def created(api: RunningApi, definition: dict[str, Any] = DEFINITION) -> dict[str, Any]:
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code == 201, r.text
    return r.json()


async def consumed(settings: Settings, kind: str, count: int,
                   timeout_s: float = 20.0) -> list[tuple[bytes | None, int, Any]]:
    """The first `count` records of a topic kind: (key, partition, decoded record)."""
    topic = topic_name(kind, settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in range(settings.kafka.default_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[tuple[bytes | None, int, Any]] = []
        async with asyncio.timeout(timeout_s):
            while len(out) < count:
                batch = await consumer.getmany(timeout_ms=200)
                # The components the API registers at start share the workflows topic.
                out += [(m.key, m.partition, record) for ms in batch.values() for m in ms
                        if not isinstance(record := decode(m.value), ComponentRegistered)]
        return out
    finally:
        await consumer.stop()


async def test_a_created_workflow_is_registered_on_kafka_and_readable_with_its_position(
        api: RunningApi) -> None:
    body = await created(api)
    assert body["version"] == 1 and body["changed"] is True
    r = await api.client.get(f"/api/workflows/{body['workflow_id']}",
                             params={"wait_for": body["position"]["token"]})
    assert r.status_code == 200, r.text
    detail = r.json()
    assert (detail["name"], detail["status"], detail["latest_version"]) == ("greeter", "active", 1)
    assert detail["definition"]["steps"][0]["id"] == "greet"
    assert detail["definition_hash"] == body["definition_hash"]
    [(key, _, event)] = await consumed(api.settings, "workflows", 1)
    assert isinstance(event, WorkflowRegistered)
    assert key == body["workflow_id"].encode() and event.name == "greeter"


async def test_a_yaml_definition_is_accepted_like_json(api: RunningApi) -> None:
    r = await api.client.post("/api/workflows", content=yaml.safe_dump(DEFINITION),
                              headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/api/workflows/{r.json()['workflow_id']}"


async def test_an_invalid_definition_is_refused_with_every_problem_and_where_it_is(
        api: RunningApi) -> None:
    bad = {"name": "broken", "steps": [
        {"id": "a", "type": "transform"},
        {"id": "b", "type": "teleport"},
        {"id": "c", "type": "transform", "expression": "1", "after": ["nowhere"]},
    ]}
    r = await api.client.post("/api/workflows", json=bad)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["error"] == "invalid_definition" and problem["status"] == 422
    locations = [e["location"] for e in problem["errors"]]
    assert "steps[0]" in locations and "steps[1]" in locations, problem


async def test_a_body_that_is_not_json_or_yaml_is_refused_with_415(api: RunningApi) -> None:
    r = await api.client.post("/api/workflows", content=b"\x00", headers={
        "content-type": "application/octet-stream"})
    assert (r.status_code, r.json()["error"]) == (415, "unreadable_body")


async def test_updating_makes_a_new_version_only_when_the_definition_changes(
        api: RunningApi) -> None:
    wf = await created(api)
    path = f"/api/workflows/{wf['workflow_id']}"
    wait = {"wait_for": wf["position"]["token"]}
    same = await api.client.put(path, json=DEFINITION, params=wait)
    assert same.status_code == 200 and same.json()["changed"] is False
    changed = await api.client.put(path, json={**DEFINITION, "description": "says hi"})
    assert changed.json()["version"] == 2, changed.text
    again = await api.client.put(path, json={**DEFINITION, "description": "says hey"})
    assert again.json()["version"] == 3, again.text
    detail = (await api.client.get(path, params={"wait_for": again.json()["position"]["token"]}
                                   )).json()
    assert [v["version"] for v in detail["versions"]] == [1, 2, 3]
    assert detail["description"] == "says hey"
    first = (await api.client.get(path, params={"version": 1})).json()
    assert first["definition"]["description"] == "says hello"


async def test_pause_activate_and_delete_change_the_status_once(api: RunningApi) -> None:
    wf = await created(api)
    path = f"/api/workflows/{wf['workflow_id']}"
    wait = {"wait_for": wf["position"]["token"]}
    paused = (await api.client.post(f"{path}/pause", params=wait)).json()
    assert paused["changed"] is True
    status = await api.client.get(path, params={"wait_for": paused["position"]["token"]})
    assert status.json()["status"] == "paused"
    again = (await api.client.post(f"{path}/pause")).json()
    assert again["changed"] is False and again["position"] is None
    active = (await api.client.post(f"{path}/activate")).json()
    deleted = (await api.client.delete(path, params={"wait_for": active["position"]["token"]}
                                       )).json()
    gone = await api.client.get(path, params={"wait_for": deleted["position"]["token"]})
    assert gone.json()["status"] == "deleted"
    refused = await api.client.post(f"{path}/execute", json={"input": {"who": "x"}})
    assert (refused.status_code, refused.json()["error"]) == (409, "workflow_deleted")
    listed = (await api.client.get("/api/workflows")).json()
    assert wf["workflow_id"] not in [w["workflow_id"] for w in listed["items"]]


async def test_workflows_are_listed_newest_first_searched_and_paged(api: RunningApi) -> None:
    made = [await created(api, {**DEFINITION, "name": f"flow {i}"}) for i in range(5)]
    tokens = [m["position"]["token"] for m in made]
    first = (await api.client.get("/api/workflows", params={"limit": 2, "wait_for": tokens}
                                  )).json()
    second = (await api.client.get("/api/workflows",
                                   params={"limit": 2, "cursor": first["next_cursor"]})).json()
    third = (await api.client.get("/api/workflows",
                                  params={"limit": 2, "cursor": second["next_cursor"]})).json()
    names = [w["name"] for page in (first, second, third) for w in page["items"]]
    assert names == [f"flow {i}" for i in reversed(range(5))]
    assert third["next_cursor"] is None
    found = (await api.client.get("/api/workflows", params={"q": "flow 3"})).json()
    assert [w["name"] for w in found["items"]] == ["flow 3"]
    bad = await api.client.get("/api/workflows", params={"cursor": "not-a-cursor"})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_cursor")


async def test_execute_puts_a_start_run_with_the_pinned_definition_on_the_commands_topic(
        api: RunningApi) -> None:
    wf = await created(api)
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"who": "ada"}, "idempotency_key": "k1"},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["status"] == "queued" and run["workflow_version"] == 1
    [(key, partition, command)] = await consumed(api.settings, "commands", 1)
    assert isinstance(command, StartRun)
    assert key == run["run_id"].encode() and command.run_id == run["run_id"]
    assert partition == run["position"]["partition"]
    assert command.input == {"who": "ada"} and command.idempotency_key == "k1"
    assert command.definition["name"] == "greeter" and command.workflow_version == 1
    shown = await api.client.get(f"/api/executions/{run['run_id']}",
                                 params={"wait_for": run["position"]["token"]})
    assert shown.status_code == 200, shown.text
    assert (shown.json()["status"], shown.json()["input"]) == ("queued", {"who": "ada"})


async def test_the_same_idempotency_key_names_the_same_run(api: RunningApi) -> None:
    wf = await created(api)
    path = f"/api/workflows/{wf['workflow_id']}/execute"
    first = (await api.client.post(path, json={"input": {"who": "a"}, "idempotency_key": "same"},
                                   params={"wait_for": wf["position"]["token"]})).json()
    again = await api.client.post(path, json={"input": {"who": "a"}, "idempotency_key": "same"},
                                  params={"wait_for": first["position"]["token"]})
    assert again.status_code == 200 and again.json()["run_id"] == first["run_id"]
    other = await api.client.post(path, json={"input": {"who": "b"}, "idempotency_key": "same"})
    assert (other.status_code, other.json()["error"]) == (409, "idempotency_conflict")
    assert other.json()["run_id"] == first["run_id"]


async def test_an_input_that_breaks_the_input_schema_is_refused_with_where(
        api: RunningApi) -> None:
    wf = await created(api)
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"who": 7}},
                              params={"wait_for": wf["position"]["token"]})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_input")
    assert r.json()["errors"] == [{"location": "input.who",
                                   "message": "7 is not of type 'string'"}]


async def test_bulk_execute_starts_one_run_per_input(api: RunningApi) -> None:
    wf = await created(api)
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute/bulk",
                              json={"inputs": [{"who": str(i)} for i in range(20)],
                                    "idempotency_key": "batch"},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    runs = r.json()["runs"]
    assert r.json()["count"] == 20 and len({x["run_id"] for x in runs}) == 20
    commands = await consumed(api.settings, "commands", 20)
    assert {c.run_id for _, _, c in commands} == {x["run_id"] for x in runs}
    tokens = [x["position"]["token"] for x in runs]
    listed = (await api.client.get("/api/executions", params={
        "workflow_id": wf["workflow_id"], "status": "queued", "limit": 200,
        "wait_for": tokens})).json()
    assert len(listed["items"]) == 20


async def test_cancel_puts_a_cancel_run_on_the_commands_topic(api: RunningApi) -> None:
    wf = await created(api)
    run = (await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                                 json={"input": {"who": "x"}},
                                 params={"wait_for": wf["position"]["token"]})).json()
    r = await api.client.post(f"/api/executions/{run['run_id']}/cancel",
                              json={"reason": "changed my mind"},
                              params={"wait_for": run["position"]["token"]})
    assert r.status_code == 202, r.text
    commands = await consumed(api.settings, "commands", 2)
    cancel = next(c for _, _, c in commands if isinstance(c, CancelRun))
    assert (cancel.run_id, cancel.reason, cancel.requested_by) == (
        run["run_id"], "changed my mind", f"key:{api.admin_key.split('_')[1]}")
    shown = (await api.client.get(f"/api/executions/{run['run_id']}",
                                  params={"wait_for": r.json()["position"]["token"]})).json()
    assert shown["cancel_reason"] == "changed my mind"


async def test_unknown_resources_answer_404_problems(api: RunningApi) -> None:
    for path, code in (("/api/workflows/nope", "unknown_workflow"),
                       ("/api/executions/nope", "unknown_run"),
                       ("/api/executions/nope/graph", "unknown_run"),
                       ("/api/nowhere", "not_found")):
        r = await api.client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["error"] == code and r.json()["instance"] == path


async def test_a_wait_for_the_projection_cannot_reach_answers_503_in_bounded_time(
        api: RunningApi) -> None:
    token = f"{topic_name('workflows', api.settings)}:0:999999"
    r = await api.client.get("/api/workflows", params={"wait_for": token, "wait_s": 0.3})
    assert (r.status_code, r.json()["error"]) == (503, "projection_behind")
    assert r.headers["retry-after"] == "1"
    other = await api.client.get("/api/workflows", params={"wait_for": "elsewhere:0:1"})
    assert (other.status_code, other.json()["error"]) == (400, "not_projected")
    broken = await api.client.get("/api/workflows", params={"wait_for": "garbage"})
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_position")


async def test_health_answers_and_ready_reports_kafka_postgres_and_lag(api: RunningApi) -> None:
    assert (await api.client.get("/api/health")).json() == {"status": "ok"}
    # The projector applies the module's earlier records in the background: the lag it reports
    # comes down to none once it has (bounded; it is pipelined, a batch may be in hand).
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        r = await api.client.get("/api/ready")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ready"] is True and set(body["checks"]) == {"postgres", "kafka"}
        if body["projection_lag"] == 0 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert body["projection_lag"] == 0
