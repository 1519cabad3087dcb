"""The webhook receiver on the real Kafka and Postgres: a signed delivery records TriggerFired
(its dedupe key the signature's digest) and starts a run pinned to the workflow's current
version with the mapped input; every refused delivery answers its status and produces nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.contracts.codec import decode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.events import TriggerFired
from bend.security.webhooks import SIGNATURE_HEADER, sign
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "whsec-0123456789abcdef"
WORKFLOW: dict[str, Any] = {
    "name": "on order",
    "input_schema": {"type": "object", "required": ["order", "event"],
                     "properties": {"order": {"type": "integer"}}},
    "steps": [{"id": "ack", "type": "transform", "expression": "input.order"}],
}
MAPPING = "{order: body.order.id, event: headers.\"x-event\", source: query.source}"


@pytest.fixture(scope="module")
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            r = await running.client.put("/api/secrets/ORDERS_HOOK", json={"value": SECRET})
            assert r.status_code == 201, r.text
            yield running
    finally:
        await drop_isolated(settings)


async def hook(api: RunningApi, **extra: Any) -> dict[str, Any]:
    """A workflow with an enabled webhook trigger; its ids and path."""
    wf = (await api.client.post("/api/workflows", json=WORKFLOW)).json()
    path = f"orders-{uuid.uuid4().hex[:8]}"
    definition = {"type": "webhook", "path": path, "secret_name": "ORDERS_HOOK",
                  "required_headers": {"X-Event": None}, "input_mapping": MAPPING, **extra}
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/triggers",
                              json={"definition": definition},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 201, r.text
    await api.client.get(f"/api/triggers/{r.json()['trigger_id']}",
                         params={"wait_for": r.json()["position"]["token"]})
    return {"workflow_id": wf["workflow_id"], "trigger_id": r.json()["trigger_id"], "path": path}


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None,
           event: str | None = "created") -> dict[str, str]:
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: sign(secret, at or int(time.time()), body)}
    if event is not None:
        headers["X-Event"] = event
    return headers


async def records_about(api: RunningApi, kind: str, field: str, value: str,
                        count: int) -> list[Any]:
    """The first `count` records of a topic kind whose `field` is `value`."""
    topic = topic_name(kind, api.settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=api.settings.kafka.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in range(api.settings.kafka.default_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[Any] = []
        async with asyncio.timeout(20):
            while len(out) < count:
                batch = await consumer.getmany(timeout_ms=200)
                out += [r for ms in batch.values() for m in ms
                        if getattr(r := decode(m.value), field, None) == value]
        return out
    finally:
        await consumer.stop()


async def test_a_signed_delivery_fires_the_trigger_and_starts_a_pinned_run(
        api: RunningApi) -> None:
    h = await hook(api)
    body = json.dumps({"order": {"id": 42}}).encode()
    headers = signed(body)
    r = await api.client.post(f"/webhooks/{h['path']}", content=body, headers=headers,
                              params={"source": "shop"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert r.headers["Location"] == f"/api/executions/{accepted['run_id']}"
    digest = headers[SIGNATURE_HEADER].rpartition("v1=")[2]
    about = await records_about(api, "triggers", "trigger_id", h["trigger_id"], 2)
    [fired] = [r for r in about if isinstance(r, TriggerFired)]
    assert (fired.trigger_id, fired.dedupe_key, fired.run_id) == (
        h["trigger_id"], digest, accepted["run_id"])
    wanted = {"order": 42, "event": "created", "source": "shop"}
    assert fired.input == wanted
    [start] = await records_about(api, "commands", "run_id", accepted["run_id"], 1)
    assert isinstance(start, StartRun)
    assert (start.trigger_id, start.workflow_version, start.input) == (
        h["trigger_id"], 1, wanted)
    assert start.definition["steps"][0]["id"] == "ack"  # pinned whole, as /execute does
    run = await api.client.get(f"/api/executions/{accepted['run_id']}",
                               params={"wait_for": accepted["position"]["token"]})
    assert run.status_code == 200 and run.json()["trigger_id"] == h["trigger_id"]
    state = (await api.client.get(f"/api/triggers/{h['trigger_id']}")).json()["state"]
    assert state["fire_count"] == 1 and state["last_fired_at"] is not None


async def test_refused_deliveries_answer_their_status_and_produce_nothing(
        api: RunningApi) -> None:
    h = await hook(api)
    url = f"/webhooks/{h['path']}"
    body = json.dumps({"order": {"id": 7}}).encode()
    now = int(time.time())
    cases = [
        ("bad signature", body, signed(body, secret="not-the-secret"), 401, "bad_signature"),
        ("no signature", body, {"X-Event": "created"}, 401, "bad_signature"),
        ("altered body", body + b" ", signed(body), 401, "bad_signature"),
        ("stale timestamp", body, signed(body, at=now - 3600), 401, "stale_timestamp"),
        ("future timestamp", body, signed(body, at=now + 3600), 401, "stale_timestamp"),
        ("missing header", body, signed(body, event=None), 400, "missing_header"),
        ("input against the schema", b'{"order": {"id": "x"}}',
         signed(b'{"order": {"id": "x"}}'), 422, "invalid_input"),
        ("not json", b"{oops", signed(b"{oops"), 400, "unreadable_delivery"),
    ]
    before = await api.log_ends()
    for label, content, headers, status, error in cases:
        r = await api.client.post(url, content=content, headers=headers)
        assert (r.status_code, r.json()["error"]) == (status, error), (label, r.text)
    # A path where no hook listens answers as a bad signature does, word for word: without a
    # hook's secret nobody can tell which paths exist. Unsigned, a known path asks for no
    # header either (its required headers are only checked once the signature is).
    unknown = await api.client.post("/webhooks/nobody-listens", content=body,
                                    headers=signed(body))
    wrong = await api.client.post(url, content=body, headers=signed(body, secret="guess"))
    unsigned = await api.client.post(url, content=body)
    for refused in (unknown, wrong, unsigned):
        assert (refused.status_code, refused.json()["error"]) == (401, "bad_signature")
    assert _said(unknown) == _said(wrong)
    assert await api.log_ends() == before


def _said(r: Any) -> tuple[int, str, str]:
    problem = r.json()
    return r.status_code, problem["title"], problem["detail"]


async def test_a_replayed_delivery_is_refused_and_produces_nothing(api: RunningApi) -> None:
    h = await hook(api)
    body = json.dumps({"order": {"id": 8}}).encode()
    headers = signed(body)
    first = await api.client.post(f"/webhooks/{h['path']}", content=body, headers=headers)
    assert first.status_code == 202, first.text
    before = await api.log_ends()
    again = await api.client.post(f"/webhooks/{h['path']}", content=body, headers=headers)
    assert (again.status_code, again.json()["error"]) == (401, "replayed_delivery")
    assert await api.log_ends() == before


async def test_required_header_values_disabled_hooks_and_paused_workflows_refuse(
        api: RunningApi) -> None:
    h = await hook(api, required_headers={"X-Event": "created"})
    body = json.dumps({"order": {"id": 9}}).encode()
    url = f"/webhooks/{h['path']}"
    before = await api.log_ends()
    r = await api.client.post(url, content=body, headers=signed(body, event="deleted"))
    assert (r.status_code, r.json()["error"]) == (400, "wrong_header")
    assert await api.log_ends() == before
    paused = await api.client.post(f"/api/workflows/{h['workflow_id']}/pause")
    await api.client.get(f"/api/workflows/{h['workflow_id']}",
                         params={"wait_for": paused.json()["position"]["token"]})
    before = await api.log_ends()
    r = await api.client.post(url, content=body, headers=signed(body))
    assert (r.status_code, r.json()["error"]) == (409, "workflow_paused")
    assert await api.log_ends() == before
    trigger = (await api.client.get(f"/api/triggers/{h['trigger_id']}")).json()
    off = await api.client.put(f"/api/triggers/{h['trigger_id']}",
                               json={"definition": trigger["definition"], "enabled": False})
    await api.client.get(f"/api/triggers/{h['trigger_id']}",
                         params={"wait_for": off.json()["position"]["token"]})
    before = await api.log_ends()
    r = await api.client.post(url, content=body, headers=signed(body))
    assert (r.status_code, r.json()["error"]) == (401, "bad_signature")  # as if it never was
    assert await api.log_ends() == before
