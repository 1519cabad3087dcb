"""Agents as their users expect them (issue 22): a structured-output agent repairs one bad
answer (and fails typed on two), a fallback model at an Anthropic endpoint answers when the
step's own endpoint fails and the recorded calls name it, and a budget stops an agent mid-loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bend.devstack.engine import Engine
from bend.devstack.llm_server import LlmServer, start_llm_server
from bend.server.testing import RunningApi, api_beside

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCHEMA = {"type": "object", "required": ["summary", "sources"],
          "properties": {"summary": {"type": "string", "minLength": 10},
                         "sources": {"type": "integer", "minimum": 0}}}


@pytest.fixture(scope="module")
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    async with api_beside(engine.settings) as running:
        yield running


@pytest.fixture()
def failing() -> Iterator[LlmServer]:
    """A second scripted model whose every request fails with 503."""
    server = start_llm_server()
    assert server.state is not None
    server.state.fail_next, server.state.fail_status = 10_000, 503
    yield server
    server.stop()


def control(server: LlmServer, **body: Any) -> None:
    httpx.post(f"{server.url}/control", json=body, timeout=5).raise_for_status()


async def run_to_end(api: RunningApi, definition: dict[str, Any],
                     topic: str = "durable timers") -> dict[str, Any]:
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code == 201, r.text
    wf = r.json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"topic": topic}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    return await finished(api, r.json()["run_id"])


async def finished(api: RunningApi, run_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = (await api.client.get(f"/api/executions/{run_id}")).json()
        if run.get("status") in ("completed", "failed", "cancelled"):
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} never finished: {run}"
        await asyncio.sleep(0.2)


async def recorded(api: RunningApi, run_id: str, event_type: str) -> list[dict[str, Any]]:
    items = (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]
    return [e["payload"] for e in items if e["event_type"] == event_type]


def agent(base_url: str, **step: Any) -> dict[str, Any]:
    return {"name": f"agent_{step.pop('name')}", "llm": {"base_url": base_url}, "steps": [
        {"id": "research", "type": "agent", "model": step.pop("model", "scripted"),
         "prompt": "Research the topic: ${input.topic}", **step}]}


def step_of(run: dict[str, Any], step_id: str = "research") -> dict[str, Any]:
    [step] = [s for s in run["steps"] if s["step_id"] == step_id]
    return dict(step)


async def test_a_structured_output_agent_repairs_one_bad_answer(
        api: RunningApi, engine: Engine) -> None:
    control(engine.llm, bad_answers_next=1)
    run = await run_to_end(api, agent(engine.llm.base_url, name="structured",
                                      output_schema=SCHEMA))
    assert run["status"] == "completed", run
    answer = step_of(run)["output"]["answer"]
    assert set(answer) == {"summary", "sources"}
    assert answer["summary"].startswith("Research summary on durable timers")
    calls = await recorded(api, run["run_id"], "AgentLlmCallRecorded")
    assert len(calls) == 2  # the bad answer, then the repaired one
    first, second = (c["request"] for c in calls)
    assert first["response_format"]["json_schema"]["schema"] == SCHEMA
    repair = second["messages"][-1]
    assert repair["role"] == "user" and "'summary' is a required property" in repair["content"]
    assert engine.llm.state is not None and engine.llm.state.bad_answers_next == 0


async def test_a_structured_answer_bad_twice_fails_the_step_with_the_path_and_no_retry(
        api: RunningApi, engine: Engine) -> None:
    control(engine.llm, bad_answers_next=2)
    run = await run_to_end(api, agent(engine.llm.base_url, name="structured_bad",
                                      output_schema=SCHEMA, retry={"max_attempts": 3}))
    assert run["status"] == "failed", run
    step = step_of(run)
    assert step["attempts"] == 1  # not retried: another attempt would ask the same model
    assert step["error_type"] == "OutputSchemaMismatch"
    assert "after one repair turn: (value): 'summary' is a required property" in \
        step["error_message"]
    assert len(await recorded(api, run["run_id"], "AgentLlmCallRecorded")) == 2


async def test_an_output_schema_that_is_not_a_json_schema_is_refused(
        api: RunningApi, engine: Engine) -> None:
    definition = agent(engine.llm.base_url, name="bad_schema",
                       output_schema={"type": "objekt"})
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code == 422, r.text
    assert "steps[0].output_schema" in r.text and "not a valid JSON Schema" in r.text


async def test_a_fallback_model_at_an_anthropic_endpoint_answers_when_the_first_fails(
        api: RunningApi, engine: Engine, failing: LlmServer) -> None:
    assert engine.llm.state is not None and failing.state is not None
    before = engine.llm.state.messages_requests
    definition = {
        "name": "agent_fallback", "llm": {"base_url": failing.base_url}, "steps": [
            {"id": "research", "type": "agent", "model": "scripted",
             "prompt": "Research the topic: ${input.topic}",
             "tools": ["web_search@1", "fetch_page@1"],
             "fallbacks": [{"model": "claude-scripted",
                            "llm": {"base_url": engine.llm.base_url,
                                    "provider": "anthropic"}}]}]}
    run = await run_to_end(api, definition)
    assert run["status"] == "completed", run
    output = step_of(run)["output"]
    assert (output["model"], output["provider"], output["fallback"]) == (
        "claude-scripted", "anthropic", 1)
    assert "Research summary on durable timers" in output["answer"]
    calls = await recorded(api, run["run_id"], "AgentLlmCallRecorded")
    assert len(calls) == 3  # search, fetch, answer: each answered by the fallback
    assert {(c["model"], c["provider"], c["endpoint"], c["fallback"]) for c in calls} == {
        ("claude-scripted", "anthropic", engine.llm.base_url, 1)}
    assert calls[0]["request"]["messages"][0]["content"][0]["type"] == "text"
    assert calls[0]["response"]["stop_reason"] == "tool_use"
    assert calls[1]["request"]["messages"][-1]["content"][0]["type"] == "tool_result"
    assert all(c["prompt_tokens"] > 0 and c["completion_tokens"] > 0 for c in calls)
    assert engine.llm.state.messages_requests - before == 3
    assert failing.state.failed >= 3  # its bounded retries, before the fallback answered
    assert failing.state.completions == 0


async def test_a_step_budget_stops_an_agent_mid_loop_with_a_typed_error(
        api: RunningApi, engine: Engine) -> None:
    run = await run_to_end(api, agent(engine.llm.base_url, name="budget",
                                      tools=["web_search@1", "fetch_page@1"],
                                      budget={"max_tokens": 40}))
    assert run["status"] == "failed", run
    step = step_of(run)
    assert step["attempts"] == 1
    assert step["error_type"] == "BudgetExceeded"
    assert "the step's budget.max_tokens of 40 is exceeded" in step["error_message"]
    calls = await recorded(api, run["run_id"], "AgentLlmCallRecorded")
    tools = await recorded(api, run["run_id"], "AgentToolCallRecorded")
    assert 1 <= len(calls) < 3 and len(tools) >= 1  # stopped between the model's turns
    used = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    if used > 40:  # the last call went past it
        assert f"{used} tokens used; the agent stopped after that call" in step["error_message"]
    else:  # the next call would have: it re-sends at least the last call's tokens
        last = calls[-1]["prompt_tokens"] + calls[-1]["completion_tokens"]
        assert (f"{used + last} tokens used with the next model call, which re-sends at least "
                f"the last call's {last} tokens; the agent stopped before it") \
            in step["error_message"]


async def test_a_spent_run_budget_schedules_no_more_agent_work(
        api: RunningApi, engine: Engine) -> None:
    def simple(step_id: str, **more: Any) -> dict[str, Any]:
        return {"id": step_id, "type": "agent", "model": "scripted",
                "prompt": f"Research the topic: {step_id}", **more}

    # a and b run side by side, each within the run's budget as it stood when they began;
    # together they spend it, so c is never handed to an executor.
    definition = {"name": "agent_run_budget", "llm": {"base_url": engine.llm.base_url},
                  "budget": {"max_tokens": 25},
                  "steps": [simple("a"), simple("b"), simple("c", after=["a", "b"])]}
    run = await run_to_end(api, definition)
    assert run["status"] == "failed", run
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["a"]["status"] == steps["b"]["status"] == "succeeded"
    c = steps["c"]
    assert (c["status"], c["error_type"]) == ("failed", "BudgetExceeded")
    calls = await recorded(api, run["run_id"], "AgentLlmCallRecorded")
    used = sum(x["prompt_tokens"] + x["completion_tokens"] for x in calls)
    assert {x["step_id"] for x in calls} == {"a", "b"} and used > 25
    assert (f"the run's budget.max_tokens of 25 is exceeded: {used} tokens used by its LLM "
            "calls before step c began") in c["error_message"]
    started = await recorded(api, run["run_id"], "StepStarted")
    assert "c" not in {e["step_id"] for e in started}


async def test_the_research_brief_example_returns_its_structured_brief(
        api: RunningApi, engine: Engine) -> None:
    text = (Path(__file__).parents[2] / "examples" / "research_brief.yaml").read_text()
    r = await api.client.post("/api/workflows", content=text,
                              headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    wf = r.json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"topic": "durable timers",
                                              "llm_base_url": engine.llm.base_url}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    run = await finished(api, r.json()["run_id"])
    assert run["status"] == "completed", run
    brief = run["output"]
    assert brief["topic"] == "durable timers"
    assert brief["summary"].startswith("Research summary on durable timers")
    assert brief["answered_by"] == "bend-scripted-researcher"  # the fallback was not needed


async def test_a_cost_budget_below_one_priced_call_is_refused(
        api: RunningApi, engine: Engine) -> None:
    definition = agent(engine.llm.base_url, name="tiny_budget", model="gpt-4o",
                       budget={"max_cost_usd": 0.000001})
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code == 422, r.text
    assert "steps[0].budget.max_cost_usd" in r.text and "gpt-4o" in r.text
