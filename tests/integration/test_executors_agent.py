"""The agent executor against the real scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from bend.components import Registry
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.core.circuit import CircuitPolicy
from bend.core.commands import RecordLlmCall, RecordToolCall
from bend.core.events import StepScheduled
from bend.devstack.llm_server import LlmServer, start_llm_server
from streams.executors import CircuitBreakers, DictSecrets, ExecutionContext, execute

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
PROMPT = "Research the topic: idempotency keys for at-least-once delivery"
API_KEY = "sk-local-test"


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    """The scripted model server, requiring `Bearer sk-local-test`."""
    server = start_llm_server(api_key=API_KEY)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_counts(llm: LlmServer) -> None:
    """Each test starts with zeroed counters and no injected failures."""
    httpx.post(f"{llm.url}/control", json={"reset": True}).raise_for_status()


def stats(llm: LlmServer) -> dict[str, Any]:
    """The server's counters, read over HTTP."""
    return httpx.get(f"{llm.url}/stats").json()


@pytest.fixture
async def ctx() -> AsyncIterator[ExecutionContext]:
    """A context with the example components, the key's secret and quick internal retries."""
    async with httpx.AsyncClient() as client:
        yield ExecutionContext(
            http=client, registry=Registry(BUILTIN_COMPONENTS),
            secrets=DictSecrets({"llm_key": API_KEY, "wrong_key": "sk-nope"}),
            circuits=CircuitBreakers(CircuitPolicy(5, timedelta(seconds=30))),
            clock=lambda: T0, llm_call_attempts=2, llm_retry_wait_s=0.01,
        )


def agent_step(server: LlmServer, **overrides: Any) -> StepScheduled:
    """A research agent step with both example tools."""
    node = {"model": "scripted", "system_prompt": "You are a careful researcher.",
            "prompt": PROMPT, "tools": ["web_search@1", "fetch_page@1"], "max_iterations": 5,
            "temperature": 0, "llm": {"base_url": server.base_url, "api_key_secret": "llm_key"}}
    node.update(overrides)
    return StepScheduled(event_id="ev-7", run_id="run-1", workflow_id="wf", occurred_at=T0,
                         step_id="research", node_type="agent", input=node,
                         idempotency_key="run-1:research:1")


async def test_the_agent_searches_fetches_the_first_hit_and_answers(llm, ctx) -> None:
    out = await execute(agent_step(llm), ctx)
    assert out.succeeded, out.message
    assert out.output["answer"].startswith("Research summary on idempotency keys")
    assert "https://docs.bend.example/idempotency" in out.output["answer"]
    assert (out.output["iterations"], out.output["tool_calls"]) == (3, 2)
    assert stats(llm)["completions"] == 3


async def test_records_hold_every_model_and_tool_call_in_order_with_tokens(llm, ctx) -> None:
    out = await execute(agent_step(llm), ctx)
    kinds = [(type(r).__name__, getattr(r, "tool_name", None)) for r in out.records]
    assert kinds == [("RecordLlmCall", None), ("RecordToolCall", "web_search@1"),
                     ("RecordLlmCall", None), ("RecordToolCall", "fetch_page@1"),
                     ("RecordLlmCall", None)]
    assert [r.call_index for r in out.records] == [0, 1, 2, 3, 4]
    llm_calls = [r for r in out.records if isinstance(r, RecordLlmCall)]
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in llm_calls)
    assert out.output["usage"] == {
        "prompt_tokens": sum(r.prompt_tokens for r in llm_calls),
        "completion_tokens": sum(r.completion_tokens for r in llm_calls),
        "cost_usd": 0.0}  # the scripted model has no price
    assert {(r.provider, r.endpoint, r.fallback) for r in llm_calls} == {
        ("openai", llm.base_url, 0)}
    first = llm_calls[0]
    assert first.model == "scripted" and first.request["temperature"] == 0
    assert [m["role"] for m in first.request["messages"]] == ["system", "user"]
    assert {t["function"]["name"] for t in first.request["tools"]} == {"web_search", "fetch_page"}
    assert [m["role"] for m in llm_calls[2].request["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "tool"]
    search, fetch = [r for r in out.records if isinstance(r, RecordToolCall)]
    assert search.tool_call_id == first.response["choices"][0]["message"]["tool_calls"][0]["id"]
    assert fetch.arguments == {"url": search.result["results"][0]["url"]}
    assert fetch.error is None and "idempotency key" in fetch.result["text"]
    assert json.dumps([r.request for r in llm_calls])  # records are plain JSON
    assert API_KEY not in json.dumps([r.request for r in llm_calls])


async def test_running_out_of_iterations_fails_permanently_keeping_the_calls(llm, ctx) -> None:
    out = await execute(agent_step(llm, max_iterations=2), ctx)
    assert (out.succeeded, out.error_type, out.retryable) == (
        False, "MaxIterationsExceeded", False)
    assert "2 model calls" in (out.message or "") and "raise max_iterations" in (out.message or "")
    assert [type(r).__name__ for r in out.records] == [
        "RecordLlmCall", "RecordToolCall", "RecordLlmCall", "RecordToolCall"]
    assert stats(llm)["requests"] == 2


async def test_a_model_failing_with_500_fails_the_step_retryably(llm, ctx) -> None:
    httpx.post(f"{llm.url}/control", json={"fail_next": 10})
    out = await execute(agent_step(llm), ctx)
    assert (out.error_type, out.retryable) == ("LlmUnavailable", True)
    assert "answered 500" in (out.message or "") and out.records == ()
    assert stats(llm)["requests"] == ctx.llm_call_attempts


async def test_one_500_is_retried_inside_the_attempt_and_the_step_succeeds(llm, ctx) -> None:
    httpx.post(f"{llm.url}/control", json={"fail_next": 1})
    out = await execute(agent_step(llm), ctx)
    assert out.succeeded, out.message
    assert (stats(llm)["requests"], stats(llm)["failed"]) == (4, 1)
    assert sum(isinstance(r, RecordLlmCall) for r in out.records) == 3


async def test_a_refused_api_key_fails_permanently(llm, ctx) -> None:
    out = await execute(agent_step(llm, llm={"base_url": llm.base_url,
                                             "api_key_secret": "wrong_key"}), ctx)
    assert (out.error_type, out.retryable) == ("LlmRejected", False)
    assert "401" in (out.message or "") and "sk-nope" not in (out.message or "")


async def test_a_missing_secret_fails_permanently_without_calling_the_model(llm, ctx) -> None:
    out = await execute(agent_step(llm, llm={"base_url": llm.base_url,
                                             "api_key_secret": "nobody"}), ctx)
    assert (out.error_type, out.retryable) == ("SecretNotFound", False)
    assert stats(llm)["requests"] == 0


async def test_an_unregistered_tool_fails_permanently_before_calling_the_model(llm, ctx) -> None:
    out = await execute(agent_step(llm, tools=["web_search@1", "translate@1"]), ctx)
    assert (out.error_type, out.retryable) == ("InvalidStepInput", False)
    assert "translate@1" in (out.message or "") and stats(llm)["requests"] == 0


async def test_an_agent_without_an_llm_endpoint_says_where_to_set_one(llm, ctx) -> None:
    out = await execute(agent_step(llm, llm=None), ctx)
    assert (out.error_type, out.retryable) == ("InvalidStepInput", False)
    assert "on the step or on the workflow" in (out.message or "")


async def test_an_agent_without_tools_gets_a_direct_answer_in_one_call(llm, ctx) -> None:
    out = await execute(agent_step(llm, tools=[]), ctx)
    assert out.succeeded and out.output["iterations"] == 1
    assert "tools" not in out.records[0].request


async def test_a_failing_model_opens_its_breaker_and_later_steps_fail_fast(llm, ctx) -> None:
    httpx.post(f"{llm.url}/control", json={"fail_next": 100})
    ctx.circuits = CircuitBreakers(CircuitPolicy(2, timedelta(seconds=30)))
    assert (await execute(agent_step(llm), ctx)).error_type == "LlmUnavailable"
    before = stats(llm)["requests"]
    out = await execute(agent_step(llm), ctx)
    assert (out.error_type, out.retryable) == ("CircuitOpen", True)
    assert llm.url in (out.message or "") and stats(llm)["requests"] == before


async def test_prompts_and_keys_never_reach_the_logs(llm, ctx) -> None:
    with capture_logs() as logs:
        out = await execute(agent_step(llm), ctx)
    assert out.succeeded and any(e["event"] == "llm_call" for e in logs)
    text = json.dumps(logs, default=str)
    assert PROMPT not in text and "careful researcher" not in text and API_KEY not in text
