"""Executors read the evaluated configuration of the core's step models, field for field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bend.core.definitions import AgentStep, HttpStep, LlmEndpoint, ToolStep
from bend.core.nodes import Budget, ModelFallback
from streams.executors import agent, http, tool

STEP_ONLY = {"id", "after", "retry", "timeout"}  # the orchestrator keeps these


def evaluated(step: BaseModel) -> dict[str, Any]:
    """A step's configuration as a task's `input` carries it."""
    return step.model_dump(mode="json", by_alias=True, exclude=STEP_ONLY)


def test_an_agent_step_of_the_core_parses_with_every_field() -> None:
    step = AgentStep(id="research", type="agent", model="m", system_prompt="be brief",
                     prompt="Research: kafka", tools=("web_search@1", "fetch_page@1"),
                     max_iterations=4, temperature=0.3,
                     llm=LlmEndpoint(base_url="http://127.0.0.1:1/v1", api_key_secret="k",
                                     timeout_s=9))
    spec = agent.parse(evaluated(step))
    assert (spec.model, spec.system_prompt, spec.prompt, spec.max_iterations,
            spec.temperature) == ("m", "be brief", "Research: kafka", 4, 0.3)
    assert spec.tools == ["web_search@1", "fetch_page@1"]
    assert spec.llm is not None
    assert (spec.llm.base_url, spec.llm.api_key_secret, spec.llm.timeout_s) == (
        "http://127.0.0.1:1/v1", "k", 9)


def test_an_agent_steps_structured_output_fallbacks_and_budget_parse() -> None:
    endpoint = LlmEndpoint(base_url="http://127.0.0.1:2/v1", provider="anthropic")
    step = AgentStep(id="a", type="agent", model="m", prompt="p",
                     llm=LlmEndpoint(base_url="http://127.0.0.1:1/v1"),
                     output_schema={"type": "object"},
                     fallbacks=("m2", ModelFallback(model="claude-x", llm=endpoint)),
                     budget=Budget(max_tokens=500))
    for value in (evaluated(step), step.task_input({}, None)):
        spec = agent.parse(value)
        assert spec.output_schema == {"type": "object"}
        assert [f.model for f in spec.fallbacks] == ["m2", "claude-x"]
        assert spec.fallbacks[1].llm is not None and spec.fallbacks[1].llm.provider == "anthropic"
        assert spec.budget is not None and spec.budget["max_tokens"] == 500


def test_a_tool_step_of_the_core_parses_with_every_field() -> None:
    step = ToolStep(id="search", type="tool", component="web_search@1",
                    inputs={"query": "sagas", "limit": 2})
    spec = tool.parse(evaluated(step))
    assert (spec.component, spec.inputs) == ("web_search@1", {"query": "sagas", "limit": 2})


def test_an_http_step_of_the_core_parses_with_every_field() -> None:
    step = HttpStep(id="call", type="http", method="post", url="https://api.example/x",
                    headers={"X-A": "1"}, query={"q": "v"}, body={"k": [1]})
    spec = http.parse(evaluated(step), timeout_ms=1500)
    assert (spec.method, spec.url, spec.headers, spec.query, spec.body, spec.timeout_s) == (
        "POST", "https://api.example/x", {"X-A": "1"}, {"q": "v"}, {"k": [1]}, 1.5)


def test_every_field_of_the_core_models_is_read_by_its_executor() -> None:
    for core, mine in ((AgentStep, agent.AgentInput), (ToolStep, tool.ToolInput),
                       (HttpStep, http.HttpInput)):
        ignored = STEP_ONLY | {"type", "description", "when"}
        unread = set(core.model_fields) - ignored - set(mine.model_fields)
        assert not unread, f"{mine.__name__} ignores {sorted(unread)} of {core.__name__}"
