"""Gated agent tools as a user drives them: the scripted model's research agent pauses before
each gated call; one call is approved via the API and runs, the other is rejected in the UI
inbox and the model reads the rejection as the tool's result; the recorded decisions replay to
the same state, and a fork after the agent reuses its output."""

from __future__ import annotations

import asyncio
import html
import json
import time
from typing import Any

import pytest

from bend.devstack.engine import Engine
from bend.server.testing import RunningApi
from tests.e2e.web_pages import get_page, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def research(base_url: str) -> dict[str, Any]:
    """An agent with both example tools, each call of which an operator decides."""
    return {"name": "gated_research", "llm": {"base_url": base_url}, "steps": [
        {"id": "research", "type": "agent", "model": "scripted",
         "prompt": "Research the topic: ${input.topic}", "tools": [
             {"ref": "web_search@1", "requires_approval": True},
             {"ref": "fetch_page@1", "requires_approval": True,
              "approvers": {"roles": ["operator"]}}]},
        {"id": "report", "type": "transform", "expression": "steps.research.output.answer"}]}


async def waiting_call(api: RunningApi, run_id: str, tool: str,
                       timeout_s: float = 30.0) -> dict[str, Any]:
    """The run's gated call of `tool` once the inbox lists it."""
    deadline = time.monotonic() + timeout_s
    while True:
        items = (await api.client.get("/api/approvals")).json()["items"]
        mine = [a for a in items if a["run_id"] == run_id and a.get("tool_call")]
        if mine and mine[0]["tool_call"]["tool_name"] == tool:
            return mine[0]
        assert time.monotonic() < deadline, f"no call of {tool} waits in run {run_id}: {items}"
        await asyncio.sleep(0.2)


async def finished(api: RunningApi, run_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = (await api.client.get(f"/api/executions/{run_id}")).json()
        if run.get("status") in ("completed", "failed", "cancelled"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} never finished: {run}"
        await asyncio.sleep(0.2)


async def test_an_approved_gated_call_runs_and_a_rejected_one_reaches_the_model(
        api: RunningApi, engine: Engine) -> None:
    wf = (await api.client.post("/api/workflows", json=research(engine.llm.base_url))).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"topic": "idempotency keys"}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    base = f"/api/executions/{run_id}/approvals/research"

    search = await waiting_call(api, run_id, "web_search@1")
    assert search["tool_call"]["arguments"] == {"query": "idempotency keys"}
    assert search["approvers"] == {"roles": ["operator", "admin"], "keys": []}
    assert search["may_decide"] is True
    calls_before = engine.llm.state.completions

    viewer = api.headers(await api.key("viewer"))
    r = await api.client.post(base, json={"decision": "approve"}, headers=viewer)
    assert (r.status_code, r.json()["error"]) == (403, "not_an_approver"), r.text
    r = await api.client.post(base, json={"decision": "approve", "tool_call_id": "other"})
    assert (r.status_code, r.json()["error"]) == (409, "approval_not_waiting"), r.text
    r = await api.client.post(base, json={"decision": "approve", "comment": "search away",
                                          "tool_call_id": search["tool_call"]["tool_call_id"]})
    assert r.status_code == 202, r.text

    fetch = await waiting_call(api, run_id, "fetch_page@1")
    assert fetch["approvers"] == {"roles": ["operator"], "keys": []}
    # rejected in the UI inbox, which shows the call and names it in its form
    operator = await signed_in(api, await api.key("operator"))
    try:
        page = await get_page(operator, "/ui/approvals")
        [card] = page.all("section", cls="approval", data_run_id=run_id)
        assert "call fetch_page@1 with" in html.unescape(card.inner_text)
        assert fetch["tool_call"]["tool_call_id"] in page.html
        r = await operator.post(f"/ui/approvals/{run_id}/research", data={
            "csrf_token": page.csrf(), "decision": "reject", "comment": "no fetching",
            "tool_call_id": fetch["tool_call"]["tool_call_id"]})
        assert r.status_code == 303, r.text
    finally:
        await operator.aclose()

    run = await finished(api, run_id)
    assert run["status"] == "completed", run
    # the model was asked once per turn: no call was repeated across the pauses
    assert engine.llm.state.completions - calls_before == 2
    events = (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]
    types = [e["event_type"] for e in events]
    assert types.count("ToolApprovalRequested") == 2 and types.count("StepResumed") == 2
    decided = [e["payload"] for e in events if e["event_type"] == "ApprovalDecided"]
    assert [(d["approved"], d["comment"]) for d in decided] == [(True, "search away"),
                                                                 (False, "no fetching")]
    assert decided[1]["decided_by"].startswith("key:")
    tools = [e["payload"] for e in events if e["event_type"] == "AgentToolCallRecorded"]
    assert [(t["tool_name"], t["error"] is None) for t in tools] == [
        ("web_search@1", True), ("fetch_page@1", False)]
    assert "rejected by key:" in tools[1]["error"] and "no fetching" in tools[1]["error"]
    llm_calls = [e["payload"] for e in events if e["event_type"] == "AgentLlmCallRecorded"]
    indices = [e["payload"]["call_index"] for e in events
               if e["event_type"] in ("AgentLlmCallRecorded", "AgentToolCallRecorded")]
    assert indices == list(range(5))
    seen = llm_calls[-1]["request"]["messages"][-1]
    assert seen["role"] == "tool" and "no fetching" in json.loads(seen["content"])["error"]
    report = next(s for s in run["steps"] if s["step_id"] == "report")["output"]
    assert report.startswith("Research summary on idempotency keys")

    # nothing waits any more, and the run's log replays to the state it ended in
    items = (await api.client.get("/api/approvals")).json()["items"]
    assert not [a for a in items if a["run_id"] == run_id]
    replay = await api.client.get(f"/api/executions/{run_id}/replay")
    assert replay.status_code == 200, replay.text
    assert (replay.json()["status"], replay.json()["output"]) == ("completed", run["output"])
    assert replay.json()["differences"] == []
    # a fork from the report reuses the agent's recorded output: nobody is asked again
    r = await api.client.post(f"/api/executions/{run_id}/fork", json={"from_step": "report"})
    assert r.status_code == 202, r.text
    forked = await finished(api, r.json()["run_id"])
    assert (forked["status"], forked["output"]) == ("completed", run["output"])
    forked_types = [e["event_type"] for e in (await api.client.get(
        f"/api/executions/{forked['run_id']}/events")).json()["items"]]
    assert "ToolApprovalRequested" not in forked_types
    assert engine.llm.state.completions - calls_before == 2
