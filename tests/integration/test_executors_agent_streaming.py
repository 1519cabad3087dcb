"""An agent step whose model streams: its text goes to the side channel, and its calls are
recorded exactly as a non-streamed step's (against the real scripted server, both APIs)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from bend.components import Registry
from bend.components.builtin import BUILTIN_COMPONENTS
from bend.core.commands import RecordLlmCall
from bend.core.events import StepScheduled
from bend.devstack.llm_server import LlmServer, start_llm_server
from bend.settings import LlmSettings
from streams.executors import DictSecrets, ExecutionContext, execute

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    server = start_llm_server()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_counts(llm: LlmServer) -> None:
    httpx.post(f"{llm.url}/control", json={"reset": True}).raise_for_status()


@pytest.fixture
async def ctx() -> AsyncIterator[ExecutionContext]:
    async with httpx.AsyncClient() as client:
        yield ExecutionContext(http=client, registry=Registry(BUILTIN_COMPONENTS),
                               secrets=DictSecrets({}), clock=lambda: T0,
                               llm_call_attempts=3, llm_retry_wait_s=0.01,
                               llm=LlmSettings(providers={"claude-": "anthropic"}))


def step(server: LlmServer, model: str) -> StepScheduled:
    spec = {"model": model, "prompt": "Research the topic: idempotency keys",
            "tools": ["web_search@1", "fetch_page@1"],
            "llm": {"base_url": server.base_url}}
    return StepScheduled(event_id="ev-1", run_id="run-1", workflow_id="wf", occurred_at=T0,
                         step_id="research", node_type="agent", input=spec,
                         idempotency_key="run-1:research:1")


def recorded(records: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The records as data, without the one field that differs between two runs: latency."""
    return [{k: v for k, v in dataclasses.asdict(r).items() if k != "latency_ms"}
            for r in records]


@pytest.mark.parametrize("model", ["scripted", "claude-scripted"])
async def test_a_streamed_step_records_what_a_whole_one_does_and_sends_its_text(
        llm: LlmServer, ctx: ExecutionContext, model: str) -> None:
    whole = await execute(step(llm, model), ctx)
    assert whole.succeeded, whole.message
    sent: list[tuple[bytes, dict[str, Any]]] = []

    async def sink(key: bytes, value: bytes) -> None:
        sent.append((key, json.loads(value)))

    ctx.tokens = sink
    streamed = await execute(step(llm, model), ctx)
    assert streamed.succeeded, streamed.message
    assert llm.state is not None and llm.state.streamed == 3  # 2 tool calls, then the answer
    assert streamed.output == whole.output
    assert recorded(streamed.records) == recorded(whole.records)
    calls = [r for r in streamed.records if isinstance(r, RecordLlmCall)]
    assert all("stream" not in c.request for c in calls)
    answer = "".join(r["text"] for _, r in sent if r["call_index"] == calls[-1].call_index)
    assert answer == whole.output["answer"]
    assert {k for k, _ in sent} == {b"run-1"}
    assert [r["final"] for _, r in sent].count(True) == 3  # one closing batch per call


async def test_a_side_channel_that_fails_leaves_the_step_as_it_was(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    async def broken(key: bytes, value: bytes) -> None:
        raise ConnectionError("broker gone")

    ctx.tokens = broken
    out = await execute(step(llm, "scripted"), ctx)
    assert out.succeeded, out.message
    assert out.output["answer"].startswith("Research summary on idempotency keys")


async def test_a_failed_streaming_call_is_retried_as_a_whole_one_is(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    httpx.post(f"{llm.url}/control", json={"fail_next": 1, "fail_status": 503}) \
        .raise_for_status()

    async def sink(key: bytes, value: bytes) -> None:
        return None

    ctx.tokens = sink
    out = await execute(step(llm, "scripted"), ctx)
    assert out.succeeded, out.message
    assert llm.state is not None and (llm.state.failed, llm.state.streamed) == (1, 3)
