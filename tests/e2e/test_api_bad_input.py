"""Requests that answered 500 (or were accepted, then lost) answer a clear 4xx now, one request
each, as an attacker or a careless client sends them. Real Kafka and Postgres, the API and its
projector."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.security.webhooks import SIGNATURE_HEADER
from bend.settings import get_settings
from tests.e2e.test_webhooks import SECRET, hook, signed
from tests.e2e.web_pages import signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HEX = "ab" * 32
TRANSFORM = {"name": "bad_input", "steps": [{"id": "a", "type": "transform",
                                             "expression": "input"}]}


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


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("header", [f"t=\u00b2,v1={HEX}", f"t={'9' * 5000},v1={HEX}",
                                    f"t=\u0661\u0662,v1={HEX}"])
async def test_a_webhook_signature_with_a_strange_timestamp_is_refused_not_crashed_on(
        api: RunningApi, header: str) -> None:
    path = (await hook(api))["path"]
    r = await api.client.post(f"/webhooks/{path}", content=b"{}",
                              headers={"Content-Type": "application/json", "X-Event": "x",
                                       SIGNATURE_HEADER: header.encode()})
    assert r.status_code == 401, r.text
    assert "t is not a whole number of seconds" in r.text


async def test_a_signed_body_nested_100000_deep_is_refused(api: RunningApi) -> None:
    path = (await hook(api))["path"]
    body = _nested(100_000).encode()
    r = await api.client.post(f"/webhooks/{path}", content=body, headers=signed(body))
    assert r.status_code in (400, 422), r.text
    assert "nests" in r.text


@pytest.mark.parametrize("content_type, body", [
    ("application/json", json.dumps({**TRANSFORM, "x": json.loads(_nested(900))})),
    ("application/json", '{"name": "x", "steps": ' + _nested(1000) + "}"),
    ("application/yaml", "name: x\nsteps: " + _nested(1000)),
    ("application/json", json.dumps({"name": "deep", "steps": [
        {"id": "a", "type": "transform", "expression": "(" * 3000 + "input" + ")" * 3000}]})),
])
async def test_a_workflow_nested_too_deep_is_refused_with_a_problem(
        api: RunningApi, content_type: str, body: str) -> None:
    r = await api.client.post("/api/workflows", content=body,
                              headers={"Content-Type": content_type})
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_run_input_nested_too_deep_is_refused(api: RunningApi) -> None:
    wf = (await api.client.post("/api/workflows", json=TRANSFORM)).json()
    body = '{"input": ' + _nested(500) + "}"
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute", content=body,
                              params={"wait_for": wf["position"]["token"]},
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "levels deep" in r.text, r.text
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              content='{"input": ' + _nested(5000) + "}",
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("token", ["bend.runs:99999999999999999999:5",
                                   "bend.runs:2147483648:5", "bend.runs:1:99999999999999999999",
                                   "bend.runs:\u00b2:1"])
async def test_a_wait_for_position_out_of_range_is_a_400(api: RunningApi, token: str) -> None:
    r = await api.client.get("/api/executions", params={"wait_for": token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_position", r.text


async def test_a_strange_last_event_id_is_no_resume_point_not_a_crash(api: RunningApi) -> None:
    wf = (await api.client.post("/api/workflows", json=TRANSFORM)).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"n": 1}}, params={"wait_for": wf["position"]["token"]})
    run_id, position = r.json()["run_id"], r.json()["position"]["token"]
    for value in ("\u00b2", "9" * 5000, "-1"):
        for path in (f"/api/executions/{run_id}/events", f"/api/executions/{run_id}/logs"):
            r = await api.client.get(path, params={"wait_for": position},
                                     headers={"Last-Event-ID": value.encode()})
            assert r.status_code == 200, (path, value, r.text)
    ui = await signed_in(api, api.admin_key)
    try:
        r = await ui.get(f"/ui/runs/{run_id}/stream",
                         params={"after_seq": 99999999999999999999})
        assert r.status_code in (400, 422), r.text  # refused before any query
        for value in ("\u00b2", "9" * 5000):
            r = await ui.get(f"/ui/runs/{run_id}/stream", params={"follow_s": 0.2},
                             headers={"Last-Event-ID": value.encode()})
            assert r.status_code == 200, (value, r.text)
    finally:
        await ui.aclose()


@pytest.mark.parametrize("field", ["name", "version"])
async def test_a_component_name_or_version_ending_in_a_newline_is_refused(
        api: RunningApi, field: str) -> None:
    body: dict[str, Any] = {"name": "trailing", "version": "1", "description": "x"}
    body[field] += "\n"
    r = await api.client.post("/api/components", json=body)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("body", [
    '{"input": {"n": 1}, "idempotency_key": "a\\u0000"}',
    '{"input": {"text": "lone \\ud800 surrogate"}}',
    '{"input": {"\\udfff": 1}}',
])
async def test_input_postgres_cannot_store_is_refused_at_the_door(api: RunningApi,
                                                                  body: str) -> None:
    wf = (await api.client.post("/api/workflows", json=TRANSFORM)).json()
    before = await api.log_ends()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute", content=body,
                              params={"wait_for": wf["position"]["token"]},
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert await api.log_ends() == before  # nothing was accepted, so nothing can be lost


async def test_a_405_names_every_method_the_path_answers(api: RunningApi) -> None:
    r = await api.client.options("/api/components")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}


@pytest.mark.parametrize("method, path, body, params", [
    ("GET", "/api/executions", None, {"until": "0.5"}),
    ("GET", "/api/executions", None, {"since": "1700000000"}),
    ("POST", "/api/keys", {"role": "viewer", "expires_at": 0}, None),
    ("POST", "/api/keys", {"role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}, None),
    ("POST", "/api/tokens", {"ttl_s": True}, None),
    ("POST", "/api/replay/projections", {"accept_differences": 0}, None),
    ("POST", "/api/dead-letters/redrive", {"error_type": "x", "force": 1}, None),
    ("POST", "/api/dead-letters/redrive", {"error_type": "x", "since": 0}, None),
])
async def test_values_of_the_wrong_type_are_refused_not_coerced(
        api: RunningApi, method: str, path: str, body: Any, params: Any) -> None:
    r = await api.client.request(method, path, json=body, params=params)
    assert r.status_code == 422, r.text


async def test_installation_admins_create_keys_of_other_projects_and_no_one_else_does(
        api: RunningApi) -> None:
    r = await api.client.post("/api/keys", json={"role": "admin", "project": "proj-new"})
    assert r.status_code == 201 and r.json()["project"] == "proj-new", r.text
    new_admin = r.json()["key"]
    r = await api.client.get("/api/keys", headers=api.headers(new_admin))
    assert r.status_code == 200 and {k["project"] for k in r.json()["items"]} == {"proj-new"}
    # An admin of that project manages its own keys, but cannot reach into another project.
    r = await api.client.post("/api/keys", json={"role": "viewer"},
                              headers=api.headers(new_admin))
    assert r.status_code == 201 and r.json()["project"] == "proj-new", r.text
    r = await api.client.post("/api/keys", json={"role": "admin", "project": "proj-other"},
                              headers=api.headers(new_admin))
    assert r.status_code == 403 and r.json()["error"] == "installation_admin_required", r.text
