"""bend.client against the real API, orchestrator, executor and projector: start (idempotent),
wait, get, list, follow, cancel, fork, replay, signals and approvals, typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bend.client import AsyncClient, Conflict, InvalidRequest, NotFound, Run
from bend.devstack.engine import Engine
from bend.server.testing import RunningApi, api_beside

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GREETER: dict[str, Any] = {
    "name": "client_greeter",
    "input_schema": {"type": "object", "required": ["who"]},
    "steps": [
        {"id": "greet", "type": "transform", "expression": "join(' ', ['hello', input.who])"},
        {"id": "shout", "type": "transform",
         "mapping": {"text": "steps.greet.output", "who": "input.who"}},
    ],
}
GATED: dict[str, Any] = {
    "name": "client_gated",
    "steps": [
        {"id": "w", "type": "wait", "signal": "go"},
        {"id": "ok", "type": "approval", "message": "ship?", "after": ["w"]},
        {"id": "after", "type": "transform",
         "mapping": {"signal": "steps.w.output", "answer": "steps.ok.output"}},
    ],
}
WAITER: dict[str, Any] = {"name": "client_waiter",
                          "steps": [{"id": "nap", "type": "delay", "duration": "60s"}]}


@pytest.fixture()
async def bend(engine: Engine) -> AsyncIterator[AsyncClient]:
    async with api_beside(engine.settings) as api, client_of(api) as client:
        yield client


def client_of(api: RunningApi) -> AsyncClient:
    return AsyncClient("http://bend.test", api.admin_key,
                       transport=httpx.ASGITransport(app=api.app))


async def step_reaches(bend: AsyncClient, run_id: str, step_id: str, status: str) -> Run:
    for _ in range(150):
        run = await bend.get(run_id)
        if any(s.step_id == step_id and s.status == status for s in run.steps):
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"{step_id} of {run_id} never {status}: {run}")


async def test_a_run_started_twice_with_one_key_is_one_run_waited_for_listed_and_replayed(
        bend: AsyncClient) -> None:
    wf = await bend.create_workflow(GREETER)
    first = await bend.start(wf.workflow_id, {"who": "ada"}, idempotency_key="k-1",
                             wait_for=wf.position)
    again = await bend.start(wf.workflow_id, {"who": "ada"}, idempotency_key="k-1")
    assert again.run_id == first.run_id  # the key names the run (the engine drops the copy)
    run = await bend.wait(first.run_id, timeout_s=60)
    assert (run.status, run.output) == ("completed", {"shout": {"text": "hello ada", "who": "ada"}})
    assert run.step("greet").output == "hello ada"
    events = await bend.events(run.run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert (events[0].event_type, events[-1].event_type) == ("RunRequested", "RunCompleted")
    followed = [e async for e in bend.follow(run.run_id)]
    assert [e.event_id for e in followed] == [e.event_id for e in events]
    listed = [r async for r in bend.list(workflow_id=wf.workflow_id, status="completed",
                                         page_size=1)]
    assert [r.run_id for r in listed] == [run.run_id]
    assert [r async for r in bend.list(workflow_id=wf.workflow_id, status="failed")] == []
    replayed = await bend.replay(run.run_id)
    assert (replayed["status"], replayed["output"], replayed["events"]) == (
        "completed", run.output, len(events))
    forked = await bend.fork(run.run_id, "shout", set={"who": "bob"})
    assert forked.reused == ["greet"] and forked.forked_from_run_id == run.run_id
    fork_run = await bend.wait(forked.run_id, timeout_s=60)
    assert fork_run.output == {"shout": {"text": "hello ada", "who": "bob"}}


async def test_signals_and_approvals_resume_a_run(bend: AsyncClient) -> None:
    wf = await bend.create_workflow(GATED)
    started = await bend.start(wf.workflow_id, {}, wait_for=wf.position)
    await step_reaches(bend, started.run_id, "w", "scheduled")
    await bend.signal(started.run_id, "go", {"n": 7})
    await step_reaches(bend, started.run_id, "ok", "scheduled")
    await bend.approve(started.run_id, "ok", answer={"why": "fine"}, comment="lgtm")
    run = await bend.wait(started.run_id, timeout_s=60)
    assert run.status == "completed", run
    assert run.output["after"]["signal"] == {"n": 7}


async def test_cancel_ends_a_waiting_run_and_errors_carry_the_problem(bend: AsyncClient) -> None:
    wf = await bend.create_workflow(WAITER)
    started = await bend.start(wf.workflow_id, {}, wait_for=wf.position)
    await step_reaches(bend, started.run_id, "nap", "scheduled")
    await bend.cancel(started.run_id, "enough")
    run = await bend.wait(started.run_id, timeout_s=30)
    assert (run.status, run.cancel_reason) == ("cancelled", "enough")
    with pytest.raises(Conflict) as conflict:
        await bend.cancel(started.run_id)
    assert conflict.value.status == 409 and conflict.value.error
    with pytest.raises(NotFound) as missing:
        await bend.get("no-such-run")
    assert (missing.value.error, missing.value.problem.get("run_id")) == (
        "unknown_run", "no-such-run")
    with pytest.raises(InvalidRequest) as bad:
        await bend.create_workflow({"name": "broken", "steps": [{"id": "x"}]})
    assert bad.value.status == 422 and bad.value.errors
