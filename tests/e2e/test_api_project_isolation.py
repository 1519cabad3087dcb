"""Projects are isolated on every route: a caller of project A, even its admin, naming project
B's run, workflow, trigger, secret, key, dead letter or rebuild is told it does not exist, and
nothing of B's changes or is sent to Kafka. The test walks every operation of the API's own
OpenAPI document that takes such an id, so a route added later is walked too (or the test says
which id it does not know). Real Kafka, Postgres, orchestrator and projector."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from bend.server.testing import RunningApi
from tests.e2e.web_pages import signed_in, ui_pages
from bend.contracts.codec import encode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.events import DeadLettered
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

B = "proj-b"
A = "proj-a"
GREETER: dict[str, Any] = {
    "name": "isolated_greeter",
    "steps": [{"id": "greet", "type": "transform",
               "expression": "join(' ', ['hello', input.who])"}],
    "output": "steps.greet.output",
}
HOURLY = {"type": "schedule", "schedule": {"cron": "0 * * * *", "timezone": "UTC"}}

# A body each operation accepts from a caller of the right project (so a refusal is about the
# project, not a malformed body).
BODIES: dict[tuple[str, str], Any] = {
    ("put", "/api/workflows/{workflow_id}"): GREETER,
    ("post", "/api/workflows/{workflow_id}/execute"): {"input": {"who": "mallory"}},
    ("post", "/api/workflows/{workflow_id}/execute/bulk"): {"inputs": [{"who": "mallory"}]},
    ("post", "/api/workflows/{workflow_id}/triggers"): {"definition": HOURLY},
    ("put", "/api/triggers/{trigger_id}"): {"definition": HOURLY, "enabled": False},
    ("post", "/api/triggers/{trigger_id}/backfill"): {"start": "2026-01-01T00:00:00Z",
                                                      "end": "2026-01-01T03:00:00Z"},
    ("post", "/api/triggers/{trigger_id}/replay"): {"from_offset": 0},
    ("post", "/api/executions/{run_id}/cancel"): {"reason": "mallory"},
    ("post", "/api/executions/{run_id}/approvals/{step_id}"): {"decision": "approve"},
    ("post", "/api/executions/{run_id}/signals/{name}"): {"from": "mallory"},
    ("post", "/api/executions/{run_id}/fork"): {"from_step": "greet", "set": {"who": "mallory"}},
    ("post", "/api/dead-letters/{event_id}/redrive"): {"force": True},
    ("put", "/api/secrets/{name}"): {"value": "from project a"},
}
# Ids that name nothing across projects: a secret's name is the caller's own namespace (A may
# set a secret of the same name: it is A's, and B's stays as it was, which the test checks).
OWN_NAMESPACE = {("put", "/api/secrets/{name}"), ("put", "/api/mcp-servers/{name}")}
# Not project resources: the installed component catalog, and the public webhook endpoint,
# which is authenticated by the trigger's HMAC secret, not by a key.
NOT_PROJECT_IDS = {"name": "/api/components/", "version": "/api/components/",
                   "path": "/webhooks/"}


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    with running_engine(executors=0) as engine:
        yield engine


async def _ok(api: RunningApi, key: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
    r = await api.client.request(method, path, headers=api.headers(key), **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.content else {}


async def _until_completed(api: RunningApi, key: str, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        r = await api.client.get(f"/api/executions/{run_id}", headers=api.headers(key))
        if r.status_code == 200 and r.json()["status"] == "completed":
            return r.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not complete")


async def _project_b(api: RunningApi) -> dict[str, str]:
    """Project B's admin makes one of each thing an id can name; those ids."""
    admin_b = await api.key("admin", B)
    wf = await _ok(api, admin_b, "POST", "/api/workflows", json=GREETER)
    wait = {"wait_for": wf["position"]["token"]}
    run = await _ok(api, admin_b, "POST", f"/api/workflows/{wf['workflow_id']}/execute",
                    json={"input": {"who": "bob"}}, params=wait)
    trigger = await _ok(api, admin_b, "POST", f"/api/workflows/{wf['workflow_id']}/triggers",
                        json={"definition": HOURLY})
    await _ok(api, admin_b, "PUT", "/api/secrets/b_only", json={"value": "bee's value"})
    key = await _ok(api, admin_b, "POST", "/api/keys", json={"role": "viewer", "name": "b"})
    start = StartRun(event_id=str(uuid.uuid4()), run_id=run["run_id"], workflow_id="gone",
                     workflow_version=1, occurred_at=datetime.now(timezone.utc),
                     correlation_id=run["run_id"], project=B, input={},
                     definition={"name": "gone", "steps": []})
    letter = DeadLettered(event_id=str(uuid.uuid4()), workflow_id="",
                          occurred_at=datetime.now(timezone.utc),
                          source_topic=topic_name("commands", api.settings), source_partition=0,
                          source_offset=1, error_type="UnknownWorkflowId", reason="test",
                          key=run["run_id"].encode(), payload=encode(start))
    async with RecordProducer(api.settings) as producer:
        position = await producer.send(letter)
    rebuild = await _ok(api, api.admin_key, "POST", "/api/replay/projections")
    await _until_completed(api, admin_b, run["run_id"])
    backtest = await _ok(api, admin_b, "POST", "/api/backtests", json={
        "workflow_id": wf["workflow_id"], "step_id": "greet", "run_ids": [run["run_id"]],
        "changes": {"expression": "'hi'"}})
    for _ in range(300):  # its run ends before the walk, which watches the run log
        found = await _ok(api, admin_b, "GET", f"/api/backtests/{backtest['backtest_id']}",
                          params={"wait_for": backtest["position"]["token"]})
        if found["finished"] and found["runs"]:
            break
        await asyncio.sleep(0.1)
    await _ok(api, admin_b, "GET", f"/api/dead-letters/{letter.event_id}",
              params={"wait_for": position.token})
    await _ok(api, admin_b, "GET", f"/api/triggers/{trigger['trigger_id']}",
              params={"wait_for": trigger["position"]["token"]})
    for _ in range(300):  # one rebuild at a time: let it finish before the walk
        status = await _ok(api, api.admin_key, "GET",
                           f"/api/replay/projections/{rebuild['rebuild_id']}")
        if status["phase"] not in {"queued", "rebuilding", "catching_up", "verifying"}:
            break
        await asyncio.sleep(0.1)
    return {"admin_b": admin_b, "workflow_id": wf["workflow_id"], "run_id": run["run_id"],
            "trigger_id": trigger["trigger_id"], "name": "b_only", "step_id": "greet", "key_id": key["key_id"],
            "event_id": letter.event_id, "rebuild_id": rebuild["rebuild_id"],
            "backtest_id": backtest["backtest_id"]}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its path parameters) of every operation taking a project id."""
    out = []
    for path, ops in spec["paths"].items():
        params = re.findall(r"{(\w+)}", path)
        if not params or any(path.startswith(NOT_PROJECT_IDS.get(p, "\0")) for p in params):
            continue
        out.extend((method, path, params) for method in ops)
    # Setting a secret of B's name makes one of A's own: walk it last, after A's reads and
    # deletes of that name found nothing.
    return sorted(out, key=lambda op: op[:2] in OWN_NAMESPACE)


async def _b_as_b_sees_it(api: RunningApi, b: dict[str, str]) -> dict[str, Any]:
    """What project B's admin reads of its own things (equal before and after the walk)."""
    key = b["admin_b"]
    run = await _ok(api, key, "GET", f"/api/executions/{b['run_id']}")
    keys = await _ok(api, key, "GET", "/api/keys")
    secrets = api.app.state.security.secrets
    return {
        "workflow": await _ok(api, key, "GET", f"/api/workflows/{b['workflow_id']}"),
        "run": {k: run[k] for k in ("status", "input", "output")},
        "runs": len((await _ok(api, key, "GET", "/api/executions"))["items"]),
        "trigger": await _ok(api, key, "GET", f"/api/triggers/{b['trigger_id']}"),
        "secret": await secrets.get(B, "b_only"),
        "keys": sorted((k["key_id"], k["revoked_at"] is None) for k in keys["items"]),
        "dead_letter": (await _ok(api, key, "GET", f"/api/dead-letters/{b['event_id']}"))[
            "redriven"],
    }


async def test_every_route_taking_an_id_refuses_another_projects_ids(api: RunningApi) -> None:
    b = await _project_b(api)
    admin_a, operator_a = await api.key("admin", A), await api.key("operator", A)
    operations = _operations(api.app.openapi())
    unknown = {p for _, _, params in operations for p in params} - set(b)
    assert not unknown, f"walk these path parameters too (ids of project B): {unknown}"
    assert len(operations) >= 25, operations

    before, ends = await _b_as_b_sees_it(api, b), await api.log_ends()
    answered: dict[tuple[str, str, str], int] = {}
    for method, template, params in operations:
        path = template
        for param in params:
            path = path.replace("{" + param + "}", b[param])
        for who, key in (("admin", admin_a), ("operator", operator_a)):
            r = await api.client.request(method.upper(), path, headers=api.headers(key),
                                         json=BODIES.get((method, template)))
            answered[(method, template, who)] = r.status_code
            if (method, template) in OWN_NAMESPACE:
                assert r.status_code < 500, (method, path, r.text)
                continue
            assert r.status_code in (403, 404), (who, method, path, r.status_code, r.text)
            if r.status_code == 404:  # unknown, never "yours is elsewhere"
                assert r.headers["content-type"].startswith("application/problem+json")
                assert B not in r.text, (method, path, r.text)
    # An admin is refused by the project, not by its role: none of its answers is a 403.
    assert not [k for k, status in answered.items() if k[2] == "admin" and status == 403
                and k[:2] not in OWN_NAMESPACE], answered

    assert await _b_as_b_sees_it(api, b) == before
    after = await api.log_ends()
    commands, run_events = (topic_name("commands", api.settings),
                            topic_name("runs", api.settings))
    moved = {tp for tp, end in after.items() if end != ends.get(tp)
             and tp[0] in (commands, run_events, topic_name("tasks", api.settings))}
    assert not moved, f"another project's request reached the engine: {moved}"


async def test_a_fork_of_another_projects_run_starts_nothing_and_a_replay_shows_nothing(
        api: RunningApi) -> None:
    b = await _project_b(api)
    operator_a = api.headers(await api.key("operator", A))
    r = await api.client.get(f"/api/executions/{b['run_id']}/replay", headers=operator_a)
    assert r.status_code == 404 and "bob" not in r.text, r.text
    r = await api.client.post(f"/api/executions/{b['run_id']}/fork", headers=operator_a,
                              json={"from_step": "greet", "set": {"who": "mallory"}})
    assert r.status_code == 404, r.text
    # B's own operator still replays and forks it.
    operator_b = api.headers(await api.key("operator", B))
    r = await api.client.get(f"/api/executions/{b['run_id']}/replay", headers=operator_b)
    assert r.status_code == 200 and r.json()["output"] == "hello bob", r.text
    r = await api.client.post(f"/api/executions/{b['run_id']}/fork", headers=operator_b,
                              json={"from_step": "greet", "set": {"who": "carol"}})
    assert r.status_code == 202, r.text
    done = await _until_completed(api, (await api.key("viewer", B)), r.json()["run_id"])
    assert done["output"] == "hello carol"


async def test_every_web_ui_page_taking_an_id_refuses_another_projects_ids(
        api: RunningApi) -> None:
    b = {**await _project_b(api), "action": "pause"}  # a status change's confirmation page
    pages = [(t, ps) for t, ps in ui_pages(api.app) if ps and ps != ["path"]]  # not the 404 page
    unknown = {p for _, params in pages for p in params} - set(b)
    assert not unknown, f"walk these path parameters too (ids of project B): {unknown}"
    assert len(pages) >= 10, pages
    admin_a = await signed_in(api, await api.key("admin", A))
    try:
        for template, params in pages:
            path = template
            for param in params:
                path = re.sub(r"\{" + param + r"(?::\w+)?\}", b[param], path)
            if template.startswith("/ui/secrets/"):  # a secret's name is A's own namespace
                r = await admin_a.get(path)
                assert r.status_code < 500 and "bee's value" not in r.text, (path, r.text)
                continue
            r = await admin_a.get(path, params={"follow_s": 0.2, "step_id": b["step_id"]})
            assert r.status_code in (403, 404), (path, r.status_code, r.text[:300])
            assert "bob" not in r.text, path  # B's run input never shows
    finally:
        await admin_a.aclose()
