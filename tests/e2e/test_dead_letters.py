"""Dead letters as an operator sees them: a StartRun for a workflow nobody registered is
dead-lettered (with its key and headers), shown, re-driven after the workflow is registered,
and then runs; a second re-drive is refused unless forced. Real workers, API and projector."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bend.server.testing import RunningApi, api_beside
from bend.contracts.codec import encode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.events import WorkflowRegistered
from bend.devstack.engine import Engine
from bend.kafka.producer import RecordProducer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DEFINITION: dict[str, Any] = {
    "name": "late", "steps": [{"id": "say", "type": "transform", "expression": "'late but here'"}],
}


@pytest.fixture()
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    async with api_beside(engine.settings, ready_s=30) as running:
        yield running


async def _eventually(probe: Any, what: str, timeout_s: float = 45) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await probe()
        if found:
            return found
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_a_dead_letter_is_shown_redriven_after_the_fix_and_then_processed(
        api: RunningApi) -> None:
    settings = api.settings
    workflow_id, run_id = f"wf-late-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    start = StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id=workflow_id,
                     workflow_version=0, occurred_at=now, correlation_id=run_id,
                     input={"n": 1})  # no definition: the orchestrator looks the workflow up
    commands = topic_name("commands", settings)
    async with RecordProducer(settings) as producer:
        sent = await producer.send_raw(commands, encode(start), key=run_id.encode(),
                                       headers=[("traceparent", b"00-abc-01")])

        async def listed() -> list[dict[str, Any]]:
            r = await api.client.get("/api/dead-letters",
                                     params={"error_type": "UnknownWorkflowId",
                                             "source_topic": commands})
            assert r.status_code == 200, r.text
            return [i for i in r.json()["items"] if i["source_offset"] == sent.offset
                    and i["source_partition"] == sent.partition]

        [item] = await _eventually(listed, "the StartRun was never dead-lettered")
        letter_id = item["event_id"]
        shown = (await api.client.get(f"/api/dead-letters/{letter_id}")).json()
        assert shown["payload_type"] == "StartRun" and shown["payload"]["run_id"] == run_id
        assert shown["key"] == run_id and shown["redriven"] is False
        assert shown["headers"] == [{"key": "traceparent",
                                     "value": base64.b64encode(b"00-abc-01").decode()}]
        assert "register the workflow" in shown["reason"]
        assert shown["source_position"] == sent.token

        # The fix: register the workflow (through the log, as the API would).
        await producer.send(WorkflowRegistered(
            event_id=str(uuid.uuid4()), workflow_id=workflow_id, workflow_version=1,
            occurred_at=now, name="late", definition=DEFINITION, definition_hash="h"))
        r = await _eventually(
            lambda: _ok(api, f"/api/workflows/{workflow_id}"), "the workflow was not projected")
        await asyncio.sleep(1.0)  # the orchestrator's catalog follows the same topic

        operator = await api.key("operator")
        r = await api.client.post(f"/api/dead-letters/{letter_id}/redrive",
                                  headers=api.headers(operator))
        assert r.status_code == 202, r.text
        redriven = r.json()
        assert redriven["redriven_to"].startswith(f"{commands}:{sent.partition}:")

        async def completed() -> bool:
            r = await api.client.get(f"/api/executions/{run_id}")
            return r.status_code == 200 and r.json()["status"] == "completed"

        await _eventually(completed, "the re-driven StartRun did not run")
        run = (await api.client.get(f"/api/executions/{run_id}")).json()
        assert run["steps"][0]["output"] == "late but here"

        marked = (await api.client.get(f"/api/dead-letters/{letter_id}",
                                       params={"wait_for": redriven["position"]})).json()
        assert marked["redriven"] and marked["redrive_count"] == 1
        assert marked["redriven_by"].startswith("key:")

        again = await api.client.post(f"/api/dead-letters/{letter_id}/redrive")
        assert again.status_code == 409 and again.json()["error"] == "already_redriven"
        assert again.headers["content-type"].startswith("application/problem+json")
        r = await api.client.post("/api/dead-letters/redrive",
                                  json={"error_type": "UnknownWorkflowId"},
                                  params={"wait_for": redriven["position"]})
        assert r.status_code == 202 and r.json()["count"] == 0  # nothing left un-re-driven
        forced = await api.client.post(f"/api/dead-letters/{letter_id}/redrive",
                                       json={"force": True})
        assert forced.status_code == 202 and forced.json()["forced"] is True

    env = {**os.environ, "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_DATABASE__SCHEMA_NAME": settings.database.schema_name, "BEND_LOG__LEVEL": "ERROR"}
    bend = str(Path(sys.executable).parent / "bend")
    out = await asyncio.to_thread(subprocess.run, [bend, "dead-letters", "list", "--redriven",
                                                   "--json"], env=env, capture_output=True,
                                  text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [r["event_id"] for r in json.loads(out.stdout)] == [letter_id]
    out = await asyncio.to_thread(subprocess.run, [bend, "dead-letters", "redrive", letter_id],
                                  env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "pass force" in out.stderr  # re-driven before


async def _ok(api: RunningApi, path: str) -> bool:
    return (await api.client.get(path)).status_code == 200


async def test_dead_letters_check_roles_and_ids(api: RunningApi) -> None:
    # What a re-drive writes to: the source topic and the dead letters' own.
    watched = (topic_name("commands", api.settings), topic_name("dead_letters", api.settings))

    async def ends() -> dict[tuple[str, int], int]:
        return {tp: end for tp, end in (await api.log_ends()).items() if tp[0] in watched}

    before = await ends()
    viewer = api.headers(await api.key("viewer"))
    assert (await api.client.get("/api/dead-letters", headers=viewer)).status_code == 403
    editor = api.headers(await api.key("editor"))
    r = await api.client.post("/api/dead-letters/x/redrive", headers=editor)
    assert r.status_code == 403
    r = await api.client.get("/api/dead-letters/nope")
    assert r.status_code == 404 and r.json()["error"] == "unknown_dead_letter"
    r = await api.client.post("/api/dead-letters/redrive", json={"event_ids": ["nope"]})
    assert r.status_code == 404
    for body in ({"event_ids": ["a\x00b"]}, {"source_topic": "\x00"}, {"error_type": "x\x00"}):
        r = await api.client.post("/api/dead-letters/redrive", json=body)  # found by the fuzzer
        assert r.status_code == 422 and "NUL" in r.text, r.text
    # Refused, every one: nothing was sent anywhere (the module's engine shares its topics
    # with the test before, whose dead letter this read model may list by now).
    assert await ends() == before
