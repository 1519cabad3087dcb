"""The agent executor's gated tools against the scripted model: pause, resume, rejection."""

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
from bend.core.commands import AwaitToolApproval, RecordLlmCall, RecordToolCall
from bend.core.events import StepScheduled
from bend.devstack.llm_server import LlmServer, start_llm_server
from streams.executors import DictSecrets, ExecutionContext, execute

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
GATED = {"web_search@1": {"roles": ["operator"], "keys": []},
         "fetch_page@1": {"roles": ["operator"], "keys": []}}


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    server = start_llm_server()
    yield server
    server.stop()


@pytest.fixture
async def ctx() -> AsyncIterator[ExecutionContext]:
    async with httpx.AsyncClient() as client:
        yield ExecutionContext(http=client, registry=Registry(BUILTIN_COMPONENTS),
                               secrets=DictSecrets({}), clock=lambda: T0)


def task(server: LlmServer, gated: dict[str, Any], resume: dict[str, Any] | None = None,
         event_id: str = "ev-1") -> StepScheduled:
    node: dict[str, Any] = {
        "model": "scripted", "prompt": "Research the topic: idempotency keys",
        "tools": ["web_search@1", "fetch_page@1"], "gated": gated,
        "llm": {"base_url": server.base_url}}
    if resume is not None:
        node["resume"] = resume
    return StepScheduled(event_id=event_id, run_id="run-1", workflow_id="wf", occurred_at=T0,
                         step_id="research", node_type="agent", input=node,
                         idempotency_key="run-1:research:1")


def resume_of(pause: AwaitToolApproval, approved: bool, comment: str = "") -> dict[str, Any]:
    return {"checkpoint": pause.checkpoint, "tool_call_id": pause.tool_call_id,
            "approved": approved, "decided_by": "key:k1", "comment": comment}


async def test_an_ungated_agent_runs_through(llm: LlmServer, ctx: ExecutionContext) -> None:
    out = await execute(task(llm, {}), ctx)
    assert out.succeeded and out.pause is None


async def test_a_gated_call_pauses_before_it_runs_and_resumes_where_it_stopped(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    first = await execute(task(llm, GATED), ctx)
    assert isinstance(first.pause, AwaitToolApproval) and not first.succeeded
    assert (first.pause.tool_name, first.pause.arguments) == (
        "web_search@1", {"query": "idempotency keys"})
    assert [type(r) for r in first.records] == [RecordLlmCall]  # the search did not run
    # approved: the search runs, then the model calls fetch_page, gated too
    second = await execute(task(llm, GATED, resume_of(first.pause, True), "ev-2"), ctx)
    assert isinstance(second.pause, AwaitToolApproval)
    assert second.pause.tool_name == "fetch_page@1"
    assert [(type(r).__name__, r.call_index) for r in second.records] == [
        ("RecordToolCall", 1), ("RecordLlmCall", 2)]
    assert second.records[0].error is None and second.records[0].result["results"]
    # rejected: the model reads the rejection as fetch_page's result and answers
    third = await execute(task(llm, GATED, resume_of(second.pause, False, "no fetching"),
                               "ev-3"), ctx)
    assert third.succeeded, third.message
    rejected, final = third.records
    assert isinstance(rejected, RecordToolCall) and rejected.call_index == 3
    assert rejected.result is None and "rejected by key:k1: no fetching" in rejected.error
    assert isinstance(final, RecordLlmCall) and final.call_index == 4
    seen = final.request["messages"][-1]
    assert seen["role"] == "tool" and "rejected by key:k1" in json.loads(seen["content"])["error"]
    assert (third.output["iterations"], third.output["tool_calls"]) == (3, 2)


async def test_a_resumed_attempt_run_twice_records_the_same_ids(
        llm: LlmServer, ctx: ExecutionContext) -> None:
    first = await execute(task(llm, GATED), ctx)
    assert first.pause is not None
    again = await execute(task(llm, GATED), ctx)
    assert again.pause is not None and again.pause.event_id == first.pause.event_id
    resumed = task(llm, GATED, resume_of(first.pause, True), "ev-2")
    a, b = await execute(resumed, ctx), await execute(resumed, ctx)
    assert [r.event_id for r in a.records] == [r.event_id for r in b.records]
    assert dataclasses.replace(a.pause, occurred_at=T0) == dataclasses.replace(b.pause,
                                                                               occurred_at=T0)
