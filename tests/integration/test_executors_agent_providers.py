"""The agent executor's providers, fallbacks, prices and budgets against real scripted servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from bend.components import Registry
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.core.circuit import CircuitPolicy
from bend.core.commands import RecordLlmCall
from bend.core.events import StepScheduled
from bend.devstack.llm_server import LlmServer, start_llm_server
from bend.settings import LlmPrice, LlmSettings
from streams.executors import CircuitBreakers, DictSecrets, ExecutionContext, execute

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
API_KEY = "sk-local-test"


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    """The scripted model (both APIs), requiring the key."""
    server = start_llm_server(api_key=API_KEY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def down() -> Iterator[LlmServer]:
    """A scripted model that answers every request with 503."""
    server = start_llm_server()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_counts(llm: LlmServer, down: LlmServer) -> None:
    httpx.post(f"{llm.url}/control", json={"reset": True}).raise_for_status()
    httpx.post(f"{down.url}/control", json={"reset": True, "fail_next": 10_000,
                                            "fail_status": 503}).raise_for_status()


@pytest.fixture
async def ctx() -> AsyncIterator[ExecutionContext]:
    async with httpx.AsyncClient() as client:
        yield ExecutionContext(
            http=client, registry=Registry(BUILTIN_COMPONENTS),
            secrets=DictSecrets({"llm_key": API_KEY, "wrong_key": "sk-nope"}),
            circuits=CircuitBreakers(CircuitPolicy(2, timedelta(seconds=30))),
            clock=lambda: T0, llm_call_attempts=2, llm_retry_wait_s=0.01,
            llm=LlmSettings(providers={"claude-": "anthropic"}),
            prices={"scripted": LlmPrice(input_per_mtok=1000, output_per_mtok=4000)},
        )


def step(server: LlmServer, **node: Any) -> StepScheduled:
    spec = {"model": "scripted", "prompt": "Research the topic: idempotency keys",
            "tools": ["web_search@1", "fetch_page@1"], "system_prompt": "Be careful.",
            "llm": {"base_url": server.base_url, "api_key_secret": "llm_key"}, **node}
    return StepScheduled(event_id="ev-1", run_id="run-1", workflow_id="wf", occurred_at=T0,
                         step_id="research", node_type="agent", input=spec,
                         idempotency_key="run-1:research:1")


def calls(records: tuple[Any, ...]) -> list[RecordLlmCall]:
    return [r for r in records if isinstance(r, RecordLlmCall)]


async def test_an_anthropic_endpoint_is_spoken_natively_with_its_key_and_version(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    out = await execute(step(llm, model="claude-scripted"), ctx)  # chosen by the settings
    assert out.succeeded, out.message
    assert out.output["answer"].startswith("Research summary on idempotency keys")
    assert (out.output["provider"], out.output["tool_calls"]) == ("anthropic", 2)
    assert llm.state is not None and llm.state.messages_requests == 3
    first, second, _ = calls(out.records)
    assert first.provider == "anthropic"
    assert first.request["system"] == "Be careful." and first.request["max_tokens"] == 4096
    assert {t["name"] for t in first.request["tools"]} == {"web_search", "fetch_page"}
    assert first.response["stop_reason"] == "tool_use"
    assert second.request["messages"][-1]["content"][0]["type"] == "tool_result"
    assert first.prompt_tokens == first.response["usage"]["input_tokens"] > 0


async def test_a_refused_key_at_an_anthropic_endpoint_fails_permanently(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    out = await execute(step(llm, llm={"base_url": llm.base_url, "api_key_secret": "wrong_key",
                                        "provider": "anthropic"}), ctx)
    assert (out.succeeded, out.error_type, out.retryable) == (False, "LlmRejected", False)


async def test_calls_are_priced_and_a_cost_budget_stops_the_loop(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    out = await execute(step(llm, tools=[]), ctx)
    [call] = calls(out.records)
    price = (call.prompt_tokens * 1000 + call.completion_tokens * 4000) / 1e6
    assert call.cost_usd == pytest.approx(price)
    assert out.output["usage"]["cost_usd"] == pytest.approx(price)
    out = await execute(step(llm, budget={"max_cost_usd": price}), ctx)
    assert (out.succeeded, out.error_type, out.retryable) == (False, "BudgetExceeded", False)
    assert "the step's budget.max_cost_usd of $" in (out.message or "")
    assert 1 <= len(calls(out.records)) < 3


async def test_fallbacks_answer_in_turn_and_a_permanent_error_is_not_passed_on(
        llm: LlmServer, down: LlmServer, ctx: ExecutionContext) -> None:
    fallbacks = [{"model": "other", "llm": {"base_url": down.base_url}},
                 {"model": "claude-scripted", "llm": {"base_url": llm.base_url,
                                                      "api_key_secret": "llm_key"}}]
    out = await execute(step(down, tools=[], fallbacks=fallbacks), ctx)
    assert out.succeeded, out.message
    assert (out.output["model"], out.output["provider"], out.output["fallback"]) == (
        "claude-scripted", "anthropic", 2)
    [call] = calls(out.records)
    assert (call.fallback, call.endpoint) == (2, llm.base_url)
    # the step's model was tried twice; that opened the endpoint's circuit (2 failures), so
    # the first fallback, at the same endpoint, was passed over without a request
    assert down.state is not None and down.state.failed == 2
    out = await execute(step(down, tools=[], fallbacks=fallbacks), ctx)
    assert out.succeeded and out.output["fallback"] == 2
    assert down.state.failed == 2
    # a refused request is the request's fault: no fallback is asked
    refused = await execute(step(llm, tools=[], llm={"base_url": llm.base_url,
                                                     "api_key_secret": "wrong_key"},
                                 fallbacks=fallbacks[1:]), ctx)
    assert (refused.succeeded, refused.error_type) == (False, "LlmRejected")
    assert calls(refused.records) == []


SCHEMA = {"type": "object", "required": ["summary"], "properties": {"summary": {"type": "string"}}}


@pytest.mark.parametrize("llm_extra", [{"structured_output": "instructions"},
                                       {"provider": "anthropic"}])
async def test_without_response_format_the_schema_is_an_instruction_and_a_miss_is_repaired(
        llm: LlmServer, ctx: ExecutionContext, llm_extra: dict[str, Any]) -> None:
    httpx.post(f"{llm.url}/control", json={"bad_answers_next": 1}).raise_for_status()
    endpoint = {"base_url": llm.base_url, "api_key_secret": "llm_key", **llm_extra}
    out = await execute(step(llm, tools=[], output_schema=SCHEMA, llm=endpoint), ctx)
    assert out.succeeded, out.message
    assert out.output["answer"]["summary"].startswith("Research summary on idempotency keys")
    first, second = calls(out.records)
    assert "response_format" not in first.request
    system = first.request.get("system") or first.request["messages"][0]["content"]
    assert "matching this JSON Schema" in system and '"required": ["summary"]' in system
    assert llm.state is not None and llm.state.structured_answers == 2
    assert out.output["iterations"] == 2


async def test_a_fallbacks_secret_is_read_only_if_the_fallback_is_tried(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    fallbacks = [{"model": "m2", "llm": {"base_url": llm.base_url, "api_key_secret": "nobody"}}]
    out = await execute(step(llm, tools=[], fallbacks=fallbacks), ctx)
    assert out.succeeded and out.output["fallback"] == 0
