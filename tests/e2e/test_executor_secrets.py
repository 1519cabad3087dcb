"""Executors take secrets from the encrypted store of the run's project, send each only to the
hosts it allows, and mask every known value out of what they record, even when an upstream
echoes it back. Real Kafka, Postgres, orchestrator, executor process, projector and API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bend.server.testing import RunningApi
from bend.devstack.engine import Engine, running_engine
from bend.devstack.llm_server import ServerHandle, scripted_reply, serve_in_background

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

STORE_KEY = "sk-store-0123456789abcdef"  # what project p-secrets stores
OTHER_KEY = "sk-other-fedcba9876543210"  # what project p-other stores under the same name
TOKEN = "tok-echoed-5f1d2c3b4a"


def _upstream() -> tuple[ServerHandle, list[str]]:
    """A model and an API that check keys and echo what they were sent, as careless ones do."""
    seen: list[str] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        seen.append(auth)
        if auth != f"Bearer {STORE_KEY}":
            return JSONResponse({"error": {"message": f"Incorrect API key provided: {auth}"}},
                                status_code=401)
        return JSONResponse(scripted_reply(await request.json()))

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"got_header": request.headers.get("x-api-key"), "got_body": body})

    @app.get("/reject")
    async def reject(request: Request) -> JSONResponse:
        return JSONResponse({"detail": f"Incorrect API key provided: "
                                       f"{request.headers.get('x-api-key')}"}, status_code=403)

    return serve_in_background(app), seen


def _agent(base_url: str) -> dict[str, Any]:
    return {"name": "secret_agent", "llm": {"base_url": base_url, "api_key_secret": "llm_key"},
            "steps": [{"id": "ask", "type": "agent", "model": "m", "prompt": "say hi",
                       "retry": {"max_attempts": 1}}]}


def _http(url: str, method: str = "POST") -> dict[str, Any]:
    step: dict[str, Any] = {"id": "call", "type": "http", "method": method, "url": url,
                            "headers": {"X-Api-Key": "{{ secrets.api_token }}"},
                            "retry": {"max_attempts": 1}}
    if method == "POST":
        step["body"] = {"auth": "Bearer {{secrets.api_token}}", "n": 1}
    return {"name": f"secret_http_{method.lower()}", "steps": [step]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[ServerHandle, list[str]]]:
    handle, seen = _upstream()
    yield handle, seen
    handle.stop()


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    # A changed secret reaches the executor within BEND_SECRETS__CACHE_S: 1 s here, not 30.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BEND_SECRETS__CACHE_S", "1")
        with running_engine(executors=1) as engine:
            yield engine


async def _run(api: RunningApi, key: str, definition: dict[str, Any]) -> dict[str, Any]:
    headers = api.headers(key)
    wf = (await api.client.post("/api/workflows", json=definition, headers=headers)).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute", json={"input": {}},
                              params={"wait_for": wf["position"]["token"]}, headers=headers)
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    for _ in range(600):
        got = await api.client.get(f"/api/executions/{run_id}", headers=headers)
        if got.status_code == 200 and got.json()["status"] in {"completed", "failed"}:
            events = await api.client.get(f"/api/executions/{run_id}/events", headers=headers)
            return {**got.json(), "events_text": events.text, "run_text": got.text}
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def _secret(api: RunningApi, key: str, name: str, value: str,
                  hosts: list[str] | None) -> None:
    body: dict[str, Any] = {"value": value}
    if hosts is not None:
        body["allowed_hosts"] = hosts
    r = await api.client.put(f"/api/secrets/{name}", json=body, headers=api.headers(key))
    assert r.status_code in (200, 201), r.text


def _error(run: dict[str, Any]) -> str:
    return " | ".join(str(x) for x in (run.get("error_message"),
                                       *(s.get("error_message") for s in run["steps"])) if x)


async def test_an_agent_uses_its_projects_stored_key_and_never_anothers(
        api: RunningApi, upstream: tuple[ServerHandle, list[str]]) -> None:
    handle, seen = upstream
    mine, other = await api.key("admin", "p-secrets"), await api.key("admin", "p-other")
    await _secret(api, mine, "llm_key", STORE_KEY, ["127.0.0.1"])
    await _secret(api, other, "llm_key", OTHER_KEY, ["127.0.0.1"])

    run = await _run(api, mine, _agent(f"{handle.url}/v1"))
    assert run["status"] == "completed", _error(run)
    assert seen[-1] == f"Bearer {STORE_KEY}"

    # Project p-other's run sends p-other's key (the upstream refuses it and echoes it back):
    # the refusal is recorded with the key masked, on Kafka and in every API view.
    run = await _run(api, other, _agent(f"{handle.url}/v1"))
    assert run["status"] == "failed" and seen[-1] == f"Bearer {OTHER_KEY}"
    assert "Incorrect API key provided: Bearer ***" in _error(run)
    assert OTHER_KEY not in run["run_text"] + run["events_text"]

    # A project with no such secret gets none: not the store's of others, not the environment's.
    nobody = await api.key("admin", "p-none")
    run = await _run(api, nobody, _agent(f"{handle.url}/v1"))
    assert run["status"] == "failed" and "SecretNotFound" in run["run_text"], _error(run)


async def test_a_secret_goes_only_to_the_hosts_it_allows(
        api: RunningApi, upstream: tuple[ServerHandle, list[str]]) -> None:
    handle, seen = upstream
    key = await api.key("admin", "p-hosts")
    await _secret(api, key, "llm_key", STORE_KEY, ["api.openai.com"])
    before = len(seen)
    run = await _run(api, key, _agent(f"{handle.url}/v1"))
    assert run["status"] == "failed" and "SecretHostRefused" in run["run_text"], _error(run)
    assert "may not be sent to 127.0.0.1" in _error(run)
    assert len(seen) == before  # nothing was sent

    # Allowing the host (the value unchanged) lets the next run through.
    r = await api.client.put("/api/secrets/llm_key", json={"allowed_hosts": ["127.0.0.1"]},
                             headers=api.headers(key))
    assert r.status_code == 200 and r.json()["allowed_hosts"] == ["127.0.0.1"], r.text
    # The executor caches a project's secrets briefly (BEND_SECRETS__CACHE_S): wait it out.
    for _ in range(10):
        run = await _run(api, key, _agent(f"{handle.url}/v1"))
        if run["status"] == "completed":
            break
        await asyncio.sleep(1)
    assert run["status"] == "completed", _error(run)


async def test_http_steps_send_secrets_in_headers_and_body_and_record_them_masked(
        api: RunningApi, upstream: tuple[ServerHandle, list[str]]) -> None:
    handle, _ = upstream
    key = await api.key("admin", "p-http")
    await _secret(api, key, "api_token", TOKEN, [f"127.0.0.1:{handle.port}"])

    run = await _run(api, key, _http(f"{handle.url}/echo"))
    assert run["status"] == "completed", _error(run)
    body = run["steps"][0]["output"]["body"]  # the upstream got the value; the run recorded it masked
    assert body == {"got_header": "***", "got_body": {"auth": "Bearer ***", "n": 1}}
    assert TOKEN not in run["run_text"] + run["events_text"]
    # The task (so the run log) keeps the reference, never the value.
    assert "{{ secrets.api_token }}" in run["events_text"]

    run = await _run(api, key, _http(f"{handle.url}/reject", "GET"))
    assert run["status"] == "failed", _error(run)
    assert "Incorrect API key provided: ***" in _error(run)
    assert TOKEN not in run["run_text"] + run["events_text"]
    r = await api.client.get(f"/api/executions/{run['run_id']}/replay", headers=api.headers(key))
    assert r.status_code == 200 and TOKEN not in r.text
