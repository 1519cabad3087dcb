"""Agents with tools from a real MCP server (the glossary server of bend.devstack, streamable
HTTP on 127.0.0.1) through the engine, the API and the projector, driven by the scripted model:
an MCP tool and a component tool in one run; replay and fork never call the server again
(counted at the server); servers registered per project are probed first; an unreachable server
and a tool with a bad schema fail the step with typed errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bend.devstack.engine import Engine
from bend.devstack.mcp_server import McpServerHandle, start_mcp_server
from bend.server.testing import RunningApi, api_beside
from bend.settings import EgressSettings

EXAMPLES = Path(__file__).parents[2] / "examples"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def glossary() -> Iterator[McpServerHandle]:
    server = start_mcp_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def broken() -> Iterator[McpServerHandle]:
    server = start_mcp_server(broken_schema=True)
    yield server
    server.stop()


@pytest.fixture()
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    """The API, allowed to reach loopback as the local stack's executors are."""
    local = engine.settings.model_copy(update={"egress": EgressSettings(
        allowed_networks=["127.0.0.0/8"])})
    async with api_beside(local) as running:
        yield running


def research(name: str, base_url: str, servers: list[Any], **agent: Any) -> dict[str, Any]:
    return {"name": name, "llm": {"base_url": base_url}, "steps": [
        {"id": "research", "type": "agent", "model": "scripted",
         "prompt": "Research the topic: ${input.topic}", "tools": ["web_search@1"],
         "mcp_servers": servers, **agent},
        {"id": "report", "type": "transform", "expression": "steps.research.output.answer"}]}


async def start(api: RunningApi, definition: dict[str, Any], topic: str) -> str:
    wf = await api.client.post("/api/workflows", json=definition)
    assert wf.status_code == 201, wf.text
    r = await api.client.post(f"/api/workflows/{wf.json()['workflow_id']}/execute",
                              json={"input": {"topic": topic}},
                              params={"wait_for": wf.json()["position"]["token"]})
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


async def finished(api: RunningApi, run_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = (await api.client.get(f"/api/executions/{run_id}")).json()
        if run.get("status") in ("completed", "failed", "cancelled"):
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} never finished: {run}"
        await asyncio.sleep(0.2)


async def tool_names(api: RunningApi, run_id: str) -> list[str]:
    events = (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]
    return [e["payload"]["tool_name"] for e in events
            if e["event_type"] == "AgentToolCallRecorded"]


async def test_an_agent_uses_an_mcp_tool_and_a_component_tool_and_replay_and_fork_never_call_it(
        api: RunningApi, engine: Engine, glossary: McpServerHandle) -> None:
    definition = research("mcp_research", engine.llm.base_url,
                          [{"name": "glossary", "url": glossary.mcp_url}])
    before = glossary.state.total
    run_id = await start(api, definition, "event sourcing")
    run = await finished(api, run_id)
    assert run["status"] == "completed", run
    assert await tool_names(api, run_id) == ["web_search@1", "mcp:glossary/lookup"]
    report = next(s for s in run["steps"] if s["step_id"] == "report")["output"]
    assert report.startswith("Research summary on event sourcing")
    assert "glossary__lookup says:" in report and "deriving state by folding them" in report
    assert glossary.state.total - before == 1
    completions = engine.llm.state.completions

    replay = await api.client.get(f"/api/executions/{run_id}/replay")
    assert replay.status_code == 200, replay.text
    assert (replay.json()["status"], replay.json()["output"]) == ("completed", run["output"])
    assert replay.json()["differences"] == []

    r = await api.client.post(f"/api/executions/{run_id}/fork", json={"from_step": "report"})
    assert r.status_code == 202, r.text
    forked = await finished(api, r.json()["run_id"])
    assert (forked["status"], forked["output"]) == ("completed", run["output"])
    # the agent's recorded output was reused: neither the server nor the model was asked again
    assert glossary.state.total - before == 1
    assert engine.llm.state.completions == completions


async def test_a_registered_server_is_probed_first_and_agents_name_it(
        api: RunningApi, engine: Engine, glossary: McpServerHandle,
        broken: McpServerHandle) -> None:
    r = await api.client.put("/api/mcp-servers/docs", json={"url": glossary.mcp_url})
    assert r.status_code == 201, r.text
    assert [(t["name"], t["model_name"]) for t in r.json()["listed"]] == [
        ("lookup", "docs__lookup")]

    r = await api.client.put("/api/mcp-servers/gone", json={"url": "http://127.0.0.1:9/mcp"})
    assert (r.status_code, r.json()["error"]) == (422, "mcp_server_unreachable"), r.text
    assert "MCP server 'gone' (http://127.0.0.1:9/mcp) did not answer" in r.json()["detail"]
    r = await api.client.put("/api/mcp-servers/careless", json={"url": broken.mcp_url})
    assert (r.status_code, r.json()["error"]) == (422, "mcp_tool_schema_invalid"), r.text
    assert "lists tool 'broken'" in r.json()["detail"]
    names = [s["name"] for s in (await api.client.get("/api/mcp-servers")).json()["items"]]
    assert names == ["docs"]  # nothing refused was kept

    viewer = api.headers(await api.key("viewer"))
    r = await api.client.put("/api/mcp-servers/mine", json={"url": glossary.mcp_url},
                             headers=viewer)
    assert r.status_code == 403, r.text

    run_id = await start(api, research("mcp_registered", engine.llm.base_url, ["docs"]),
                         "idempotency key")
    run = await finished(api, run_id)
    assert run["status"] == "completed", run
    assert await tool_names(api, run_id) == ["web_search@1", "mcp:docs/lookup"]
    report = next(s for s in run["steps"] if s["step_id"] == "report")["output"]
    assert "a key that makes a repeated request take effect once" in report


async def test_registering_a_server_the_egress_policy_refuses_is_refused(
        engine: Engine, glossary: McpServerHandle) -> None:
    async with api_beside(engine.settings) as strict:  # production egress: no loopback
        r = await strict.client.put("/api/mcp-servers/docs", json={"url": glossary.mcp_url})
        assert (r.status_code, r.json()["error"]) == (422, "egress_refused"), r.text
        assert "BEND_EGRESS__ALLOWED_NETWORKS" in r.json()["detail"]


@pytest.mark.parametrize("server, error_type, said", [
    ("gone", "McpServerUnreachable", "MCP server 'gone' (http://127.0.0.1:9/mcp) did not answer"),
    ("careless", "McpToolSchemaInvalid", "MCP server 'careless' lists tool 'broken'"),
])
async def test_a_server_that_does_not_answer_or_lists_a_bad_schema_fails_the_step_typed(
        api: RunningApi, engine: Engine, broken: McpServerHandle, server: str,
        error_type: str, said: str) -> None:
    url = "http://127.0.0.1:9/mcp" if server == "gone" else broken.mcp_url
    definition = research(f"mcp_{server}", engine.llm.base_url, [{"name": server, "url": url}],
                          retry={"max_attempts": 1})
    run = await finished(api, await start(api, definition, "kafka"))
    assert (run["status"], run["error_type"], run["failed_step_id"]) == (
        "failed", error_type, "research"), run
    step = next(s for s in run["steps"] if s["step_id"] == "research")
    assert said in step["error_message"]


async def test_the_glossary_example_runs_with_its_mcp_server(
        api: RunningApi, engine: Engine, glossary: McpServerHandle) -> None:
    definition = yaml.safe_load((EXAMPLES / "glossary_agent.yaml").read_text())
    wf = await api.client.post("/api/workflows", json=definition)
    assert wf.status_code == 201, wf.text
    r = await api.client.post(f"/api/workflows/{wf.json()['workflow_id']}/execute", json={
        "input": {"topic": "durable execution", "llm_base_url": engine.llm.base_url,
                  "mcp_url": glossary.mcp_url}},
        params={"wait_for": wf.json()["position"]["token"]})
    assert r.status_code == 202, r.text
    run = await finished(api, r.json()["run_id"])
    assert run["status"] == "completed", run
    assert run["output"]["tool_calls"] == 2
    assert "survives crashes by replaying its history" in run["output"]["summary"]
