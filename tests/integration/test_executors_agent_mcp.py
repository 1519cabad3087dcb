"""The agent executor with tools from real MCP servers (the glossary server of bend.devstack,
over streamable HTTP on 127.0.0.1 and over stdio) beside component tools, driven by the scripted
model: calls are recorded as tool calls, and bad servers fail the step with typed errors."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from bend.components import Registry
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.core.commands import RecordToolCall
from bend.core.events import StepScheduled
from bend.devstack.llm_server import LlmServer, start_llm_server
from bend.devstack.mcp_server import McpServerHandle, start_mcp_server
from bend.mcp.registry import DictMcpRegistry, McpAccess
from bend.mcp.store import RegisteredServer
from bend.settings import EgressSettings
from streams.executors import DictSecrets, ExecutionContext, execute
from streams.executors.egress import EgressPolicy

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
TOKEN = "mcp-token-0123456789"
LOOPBACK = EgressPolicy.of(EgressSettings(allowed_networks=["127.0.0.0/8"]))


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    server = start_llm_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def glossary() -> Iterator[McpServerHandle]:
    server = start_mcp_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def guarded() -> Iterator[McpServerHandle]:
    """The glossary, answering only `Bearer TOKEN`."""
    server = start_mcp_server(token=TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def broken() -> Iterator[McpServerHandle]:
    server = start_mcp_server(broken_schema=True)
    yield server
    server.stop()


def context(client: httpx.AsyncClient, *, policy: EgressPolicy = LOOPBACK,
            allow_stdio: bool = False, registered: dict[str, RegisteredServer] | None = None,
            hosts: dict[str, list[str]] | None = None) -> ExecutionContext:
    return ExecutionContext(
        http=client, registry=Registry(BUILTIN_COMPONENTS),
        secrets=DictSecrets({"mcp_token": TOKEN}, hosts=hosts), clock=lambda: T0,
        mcp=McpAccess(policy, DictMcpRegistry(registered), timeout_s=5, allow_stdio=allow_stdio))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def agent_step(llm: LlmServer, servers: list[Any], tools: list[str] | None = None) -> StepScheduled:
    node = {"model": "scripted", "prompt": "Research the topic: event sourcing",
            "tools": ["web_search@1", "fetch_page@1"] if tools is None else tools,
            "max_iterations": 6, "llm": {"base_url": llm.base_url}, "mcp_servers": servers}
    return StepScheduled(event_id="ev-mcp", run_id="run-mcp", workflow_id="wf", occurred_at=T0,
                         step_id="research", node_type="agent", input=node,
                         idempotency_key="run-mcp:research:1")


def tool_calls(records: tuple[Any, ...]) -> list[tuple[str, Any, Any, Any]]:
    return [(r.tool_name, r.arguments, r.result, r.error) for r in records
            if isinstance(r, RecordToolCall)]


async def test_an_agent_calls_an_mcp_tool_beside_component_tools_and_each_call_is_recorded(
        llm: LlmServer, glossary: McpServerHandle, client: httpx.AsyncClient) -> None:
    before = glossary.state.calls["lookup"]
    out = await execute(agent_step(llm, [{"name": "glossary", "url": glossary.mcp_url}]),
                        context(client))
    assert out.succeeded, out.message
    calls = tool_calls(out.records)
    assert [c[0] for c in calls] == ["web_search@1", "fetch_page@1", "mcp:glossary/lookup"]
    assert calls[2][1:] == ({"term": "event sourcing"}, {
        "term": "event sourcing", "definition": "storing every change as an event and deriving "
                                                "state by folding them"}, None)
    assert "glossary__lookup says:" in out.output["answer"]
    assert "deriving state by folding them" in out.output["answer"]
    assert glossary.state.calls["lookup"] - before == 1
    offered = [t["function"]["name"] for t in out.records[-1].request["tools"]]
    assert offered == ["web_search", "fetch_page", "glossary__lookup"]


async def test_a_stdio_server_runs_where_allowed_and_is_refused_elsewhere(
        llm: LlmServer, client: httpx.AsyncClient) -> None:
    server = {"name": "local", "command": sys.executable,
              "args": ["-m", "bend.devstack.mcp_server", "--stdio"]}
    out = await execute(agent_step(llm, [server], tools=[]), context(client, allow_stdio=True))
    assert out.succeeded, out.message
    assert tool_calls(out.records)[0][0] == "mcp:local/lookup"
    assert "deriving state by folding them" in out.output["answer"]

    refused = await execute(agent_step(llm, [server], tools=[]), context(client))
    assert (refused.error_type, refused.retryable) == ("McpStdioRefused", False)
    assert "BEND_MCP__ALLOW_STDIO" in (refused.message or "")


async def test_a_registered_server_gets_its_secret_header_for_its_host_only(
        llm: LlmServer, guarded: McpServerHandle, client: httpx.AsyncClient) -> None:
    registered = {"docs": RegisteredServer(
        "docs", guarded.mcp_url, {"Authorization": "Bearer {{ secrets.mcp_token }}"})}
    out = await execute(agent_step(llm, [{"name": "docs"}], tools=[]),
                        context(client, registered=registered, hosts={"mcp_token": ["127.0.0.1"]}))
    assert out.succeeded, out.message
    assert [c[0] for c in tool_calls(out.records)] == ["mcp:docs/lookup"]

    elsewhere = await execute(agent_step(llm, [{"name": "docs"}], tools=[]), context(
        client, registered=registered, hosts={"mcp_token": ["mcp.example.com"]}))
    assert elsewhere.error_type == "SecretHostRefused", elsewhere.message
    unknown = await execute(agent_step(llm, [{"name": "nowhere"}], tools=[]), context(client))
    assert (unknown.error_type, unknown.retryable) == ("UnknownMcpServer", False)
    assert "PUT /api/mcp-servers/nowhere" in (unknown.message or "")


async def test_an_unreachable_server_fails_the_step_retryably_naming_it(
        llm: LlmServer, client: httpx.AsyncClient) -> None:
    out = await execute(agent_step(llm, [{"name": "gone", "url": "http://127.0.0.1:9/mcp"}]),
                        context(client))
    assert (out.error_type, out.retryable) == ("McpServerUnreachable", True)
    assert "MCP server 'gone' (http://127.0.0.1:9/mcp) did not answer" in (out.message or "")
    assert not out.records  # the model was never asked


async def test_a_tool_with_an_invalid_schema_fails_the_step_unless_the_allow_list_leaves_it_out(
        llm: LlmServer, broken: McpServerHandle, client: httpx.AsyncClient) -> None:
    out = await execute(agent_step(llm, [{"name": "careless", "url": broken.mcp_url}]),
                        context(client))
    assert (out.error_type, out.retryable) == ("McpToolSchemaInvalid", False)
    assert "MCP server 'careless' lists tool 'broken'" in (out.message or "")
    assert "properties/q/type" in (out.message or "")

    kept = await execute(agent_step(llm, [{"name": "careless", "url": broken.mcp_url,
                                           "tools": ["lookup"]}], tools=[]), context(client))
    assert kept.succeeded, kept.message


async def test_the_egress_policy_refuses_a_server_at_an_internal_address(
        llm: LlmServer, glossary: McpServerHandle, client: httpx.AsyncClient) -> None:
    out = await execute(agent_step(llm, [{"name": "glossary", "url": glossary.mcp_url}]),
                        context(client, policy=EgressPolicy()))
    assert (out.error_type, out.retryable) == ("EgressRefused", False)
    assert "BEND_EGRESS__ALLOWED_NETWORKS" in (out.message or "")


class _Down:
    async def server(self, project: str, name: str) -> RegisteredServer:
        raise ConnectionRefusedError("the store is down")


async def test_a_registry_that_cannot_be_read_fails_the_step_retryably(
        llm: LlmServer, client: httpx.AsyncClient) -> None:
    ctx = context(client)
    ctx.mcp.registry = _Down()
    out = await execute(agent_step(llm, [{"name": "docs"}], tools=[]), ctx)
    assert (out.error_type, out.retryable) == ("McpRegistryUnavailable", True)
    assert "ConnectionRefusedError" in (out.message or "")
