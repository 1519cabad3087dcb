"""MCP servers in agent definitions: the forms a step may name them in, what is refused, what
the executor receives; the names the model calls tools by; the scripted model's MCP turns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bend.core.definitions import InvalidDefinition, parse_definition
from bend.core.nodes import AgentStep, LlmEndpoint
from bend.devstack.llm_server import scripted_reply
from bend.mcp.session import model_name
from bend.mcp.store import RegisteredServer

LLM = {"base_url": "http://127.0.0.1:8700/v1"}


def agent(servers: Any) -> dict[str, Any]:
    return {"name": "wf", "llm": LLM, "steps": [
        {"id": "research", "type": "agent", "model": "m", "prompt": "p", "mcp_servers": servers}]}


def test_a_server_is_named_by_url_by_command_or_by_its_registered_name() -> None:
    defn = parse_definition(agent([
        "github", {"name": "docs", "url": "http://${input.host}/mcp", "tools": ["lookup"],
                   "headers": {"Authorization": "Bearer {{ secrets.docs_token }}"}},
        {"name": "local_fs", "command": "python", "args": ["-m", "server"]}]))
    step = defn.steps[0]
    assert isinstance(step, AgentStep)
    given_input = step.task_input({"input": {"host": "docs.example"}}, LlmEndpoint(**LLM))
    assert given_input["mcp_servers"] == [
        {"name": "github", "url": None, "command": None, "args": [], "headers": {},
         "tools": None, "timeout_s": None},
        {"name": "docs", "url": "http://docs.example/mcp", "command": None, "args": [],
         "headers": {"Authorization": "Bearer {{ secrets.docs_token }}"},  # named, not filled
         "tools": ["lookup"], "timeout_s": None},
        {"name": "local_fs", "url": None, "command": "python", "args": ["-m", "server"],
         "headers": {}, "tools": None, "timeout_s": None}]


def test_an_agent_without_servers_keeps_its_task_input_as_before() -> None:
    step = parse_definition(agent([])).steps[0]
    assert "mcp_servers" not in step.task_input({"input": {}}, LlmEndpoint(**LLM))


@pytest.mark.parametrize("servers, said", [
    ([{"name": "a__b", "url": "http://x"}], "should match pattern"),
    ([{"name": "a", "url": "http://x", "command": "y"}], "a `url` or a `command`, not both"),
    (["a", {"name": "a", "url": "http://x"}], "MCP server names repeat"),
    ([{"name": "a", "headers": {"x": "y"}}], "`headers` go with `url`"),
    ([{"name": "a", "url": "http://x", "args": ["-v"]}], "`args` go with `command`"),
    ([{"name": "a", "url": "http://x", "transport": "sse"}], "transport"),
    ([{"name": "a", "url": "http://x", "headers": {"X-Key": "caf\u00e9"}}], "headers.X-Key"),
    ([{"name": "a", "url": "http://x", "headers": {"Bad Name": "v"}}], "headers.Bad Name"),
])
def test_a_wrong_server_entry_is_refused_with_where_and_why(servers: Any, said: str) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(agent(servers))
    assert "steps[0].mcp_servers" in str(caught.value) and said in str(caught.value)


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True),
       st.text(min_size=1, max_size=120))
def test_the_model_name_of_a_tool_is_a_safe_function_name_led_by_its_server(
        server: str, tool: str) -> None:
    name = model_name(server, tool)
    assert name.startswith(f"{server}__") and len(name) <= 64
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def test_a_definitions_allow_list_narrows_a_registered_one() -> None:
    server = RegisteredServer("docs", "https://docs.example/mcp", {}, ("lookup", "search"))
    assert server.spec()["tools"] == ["lookup", "search"]
    assert server.spec(["search", "delete"])["tools"] == ["search"]
    assert RegisteredServer("docs", "https://docs.example/mcp", {}).spec(["x"])["tools"] == ["x"]


def test_the_scripted_model_calls_each_mcp_tool_once_with_the_topic_then_quotes_it() -> None:
    tool = {"type": "function", "function": {"name": "glossary__lookup", "parameters": {
        "type": "object", "properties": {"term": {"type": "string"}}, "required": ["term"]}}}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "topic: kafka"}]
    first = scripted_reply({"messages": messages, "tools": [tool]})["choices"][0]["message"]
    [call] = first["tool_calls"]
    assert call["function"] == {"name": "glossary__lookup", "arguments": '{"term": "kafka"}'}
    messages += [first, {"role": "tool", "tool_call_id": call["id"],
                         "content": json.dumps({"definition": "a log"})}]
    answer = scripted_reply({"messages": messages, "tools": [tool]})["choices"][0]["message"]
    assert 'glossary__lookup says: {"definition": "a log"}' in answer["content"]
