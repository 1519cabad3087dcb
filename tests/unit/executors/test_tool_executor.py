"""The tool executor calls a component with validated inputs and types its failures."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import httpx

from bend.components import ComponentContext, ComponentFailed, Registry, component
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.core.events import StepScheduled
from streams.executors import DictSecrets, ExecutionContext, StepOutcome, execute

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


@component("echo_key", "1")
def echo_key(context: ComponentContext, word: str = "") -> dict:
    """Return the call's idempotency key."""
    return {"key": context.idempotency_key, "word": word}


@component("flaky", "1")
def flaky(retryable: bool) -> dict:
    """Refuse the call on purpose."""
    raise ComponentFailed("the upstream is busy", retryable=retryable)


@component("buggy", "1")
async def buggy() -> dict:
    """Crash like a component with a bug."""
    raise ValueError("division by zero somewhere")


@component("slow", "1")
async def slow() -> dict:
    """Take a while."""
    await asyncio.sleep(2)
    return {}


def scheduled(node_type: str, input: Any, **kw: Any) -> StepScheduled:
    """A step of run-1 ready for an executor."""
    return StepScheduled(event_id="ev-1", run_id="run-1", workflow_id="wf", occurred_at=T0,
                         step_id="a", node_type=node_type, input=input,
                         idempotency_key="run-1:a:1", **kw)


async def run(task: StepScheduled) -> StepOutcome:
    """Execute `task` with the example components and the ones above."""
    registry = Registry([*BUILTIN_COMPONENTS, echo_key, flaky, buggy, slow])
    async with httpx.AsyncClient() as client:
        ctx = ExecutionContext(http=client, registry=registry, secrets=DictSecrets(),
                               clock=lambda: T0)
        return await execute(task, ctx)


async def test_a_tool_step_outputs_what_its_component_returns() -> None:
    out = await run(scheduled("tool", {"component": "web_search@1",
                                       "inputs": {"query": "sagas", "limit": 1}}))
    assert out.succeeded and out.records == ()
    assert out.output["results"][0]["url"].endswith("/sagas")


async def test_the_component_receives_the_steps_idempotency_key() -> None:
    out = await run(scheduled("tool", {"component": "echo_key", "inputs": {"word": "hi"}}))
    assert out.output == {"key": "run-1:a:1", "word": "hi"}


async def test_inputs_breaking_the_schema_fail_permanently_naming_the_field() -> None:
    out = await run(scheduled("tool", {"component": "web_search@1", "inputs": {"query": 7}}))
    assert not out.succeeded and not out.retryable
    assert out.error_type == "InvalidComponentInput" and "'query'" in (out.message or "")


async def test_an_unknown_component_fails_permanently() -> None:
    out = await run(scheduled("tool", {"component": "translate@2", "inputs": {}}))
    assert (out.error_type, out.retryable) == ("UnknownComponent", False)
    assert "translate@2" in (out.message or "")


async def test_a_component_error_keeps_its_type_and_retryability() -> None:
    out = await run(scheduled("tool", {"component": "fetch_page@1",
                                       "inputs": {"url": "https://nowhere.example"}}))
    assert (out.error_type, out.retryable) == ("PageNotFound", False)
    for retryable in (True, False):
        out = await run(scheduled("tool", {"component": "flaky",
                                           "inputs": {"retryable": retryable}}))
        assert (out.error_type, out.retryable) == ("ComponentFailed", retryable)


async def test_an_unexpected_component_exception_is_retryable_and_named() -> None:
    out = await run(scheduled("tool", {"component": "buggy"}))
    assert (out.error_type, out.retryable) == ("ValueError", True)
    assert "division by zero" in (out.message or "")


async def test_a_tool_step_without_a_component_is_an_invalid_input() -> None:
    out = await run(scheduled("tool", {"inputs": {}}))
    assert (out.error_type, out.retryable) == ("InvalidStepInput", False)
    assert "component" in (out.message or "")


async def test_a_step_past_its_timeout_fails_retryably() -> None:
    out = await run(scheduled("tool", {"component": "slow"}, timeout_ms=50))
    assert (out.error_type, out.retryable) == ("StepTimeout", True)


async def test_a_node_type_without_an_executor_fails_permanently() -> None:
    out = await run(scheduled("transform", {}))
    assert (out.error_type, out.retryable) == ("UnknownNodeType", False)
    assert "agent, http, tool" in (out.message or "")
