"""Approvals and signals as a user drives them: the REST API, the real orchestrator and the
projector. A run waits on an approval and is approved, rejected, or takes its timeout's default;
a signal resumes a run, one sent early is kept for it; bad requests are refused with a 4xx and
leave the run as it was; a bad signal from Kafka is dead-lettered with its reason."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from bend.core.commands import SignalRun
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.server.testing import RunningApi
from tests.e2e.web_pages import Page, get_page, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SIZE = {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}}


def approval(**options: Any) -> dict[str, Any]:
    """A workflow: an approval `ok` (with `options`), then a step reading its answer."""
    return {"name": "approved", "steps": [
        {"id": "ok", "type": "approval", "message": "ship ${input.what}?", **options},
        {"id": "after", "type": "transform", "expression": "steps.ok.output", "after": ["ok"]}]}


def waiting(first: dict[str, Any] | None = None) -> dict[str, Any]:
    """A workflow: (`first`, then) a wait for signal `go` with a schema, then a reader."""
    steps: list[dict[str, Any]] = [first] if first else []
    steps += [{"id": "w", "type": "wait", "signal": "go", "payload_schema": {
                   "type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
               **({"after": [first["id"]]} if first else {})},
              {"id": "after", "type": "transform", "expression": "steps.w.output.n"}]
    return {"name": "waiting", "steps": steps}


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    with running_engine(executors=0) as engine:
        yield engine


async def run_of(api: RunningApi, definition: dict[str, Any], run_input: Any = None) -> str:
    wf = (await api.client.post("/api/workflows", json=definition)).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": run_input or {}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    return r.json()["run_id"]


async def until(api: RunningApi, run_id: str, check: Any, timeout_s: float = 30.0,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = await api.client.get(f"/api/executions/{run_id}", headers=headers)
        if r.status_code == 200 and check(r.json()):
            return r.json()
        assert time.monotonic() < deadline, f"run {run_id} never got there: {r.text}"
        await asyncio.sleep(0.2)


def step_status(step_id: str, status: str) -> Any:
    return lambda run: any(s["step_id"] == step_id and s["status"] == status
                           for s in run["steps"])


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("completed", "failed", "cancelled")


async def events(api: RunningApi, run_id: str) -> list[dict[str, Any]]:
    return (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]


async def decide(api: RunningApi, run_id: str, step_id: str, body: dict[str, Any],
                 key: str | None = None) -> Any:
    return await api.client.post(f"/api/executions/{run_id}/approvals/{step_id}", json=body,
                                 headers=api.headers(key) if key else None)


async def test_a_run_waits_on_an_approval_is_approved_and_completes(api: RunningApi) -> None:
    run_id = await run_of(api, approval(answer_schema=SIZE), {"what": "v2"})
    await until(api, run_id, step_status("ok", "scheduled"))
    pending = (await api.client.get("/api/approvals")).json()["items"]
    [mine] = [a for a in pending if a["run_id"] == run_id]
    assert (mine["step_id"], mine["message"], mine["may_decide"]) == ("ok", "ship v2?", True)
    assert mine["approvers"] == {"roles": ["operator", "admin"], "keys": []}

    r = await decide(api, run_id, "ok", {"decision": "approve", "answer": {"size": "big"}})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_answer"), r.text
    r = await decide(api, run_id, "ok", {"decision": "approve", "answer": {"size": 3},
                                         "comment": "go"})
    assert r.status_code == 202, r.text
    run = await until(api, run_id, finished)
    assert run["status"] == "completed", run
    assert {s["step_id"]: s["output"] for s in run["steps"]} == {"ok": {"size": 3},
                                                                 "after": {"size": 3}}
    [decided] = [e for e in await events(api, run_id) if e["event_type"] == "ApprovalDecided"]
    assert decided["payload"]["approved"] is True and decided["payload"]["comment"] == "go"
    assert decided["payload"]["decided_by"].startswith("key:")
    assert decided["payload"]["answer"] == {"size": 3}

    r = await decide(api, run_id, "ok", {"decision": "approve", "answer": {"size": 4}})
    assert (r.status_code, r.json()["error"]) == (409, "run_finished"), r.text
    assert run_id not in {a["run_id"] for a in
                          (await api.client.get("/api/approvals")).json()["items"]}
    replayed = (await api.client.get(f"/api/executions/{run_id}/replay")).json()
    assert replayed["status"] == "completed" and not replayed["differences"], replayed
    r = await api.client.post(f"/api/executions/{run_id}/fork", json={"from_step": "after"})
    assert r.status_code == 202, r.text
    fork = await until(api, r.json()["run_id"], finished)  # the approval reused, not asked again
    assert fork["status"] == "completed", fork
    assert {s["step_id"]: s["output"] for s in fork["steps"]}["after"] == {"size": 3}
    assert "ApprovalDecided" not in {e["event_type"] for e in await events(api, fork["run_id"])}


async def test_an_approval_decided_twice_is_refused_the_second_time(api: RunningApi) -> None:
    definition = approval()
    definition["steps"].append({"id": "second", "type": "approval", "after": ["after"]})
    run_id = await run_of(api, definition, {"what": "x"})
    await until(api, run_id, step_status("ok", "scheduled"))
    assert (await decide(api, run_id, "ok", {"decision": "approve"})).status_code == 202
    await until(api, run_id, step_status("second", "scheduled"))
    r = await decide(api, run_id, "ok", {"decision": "reject"})
    assert (r.status_code, r.json()["error"]) == (409, "approval_not_waiting"), r.text
    assert "succeeded" in r.json()["detail"]
    r = await decide(api, run_id, "after", {"decision": "approve"})
    assert (r.status_code, r.json()["error"]) == (409, "approval_not_waiting"), r.text
    r = await decide(api, run_id, "nope", {"decision": "approve"})
    assert r.status_code == 409, r.text
    run = (await api.client.get(f"/api/executions/{run_id}")).json()
    assert run["status"] == "running"
    assert sum(e["event_type"] == "ApprovalDecided" for e in await events(api, run_id)) == 1


async def test_a_rejected_approval_fails_the_run_with_the_comment(api: RunningApi) -> None:
    run_id = await run_of(api, approval(), {"what": "x"})
    await until(api, run_id, step_status("ok", "scheduled"))
    r = await decide(api, run_id, "ok", {"decision": "reject", "comment": "not today"})
    assert r.status_code == 202, r.text
    run = await until(api, run_id, finished)
    assert (run["status"], run["error_type"]) == ("failed", "ApprovalRejected"), run
    assert "not today" in run["error_message"]


async def test_an_approval_that_times_out_takes_its_default(api: RunningApi) -> None:
    run_id = await run_of(api, approval(timeout="2s", on_timeout="approve"), {"what": "x"})
    run = await until(api, run_id, finished)
    assert run["status"] == "completed", run
    [decided] = [e for e in await events(api, run_id) if e["event_type"] == "ApprovalDecided"]
    assert decided["payload"]["timed_out"] is True and decided["payload"]["decided_by"] == ""


async def test_an_approval_past_its_timeout_is_refused_and_rejects_by_default(
        api: RunningApi) -> None:
    run_id = await run_of(api, approval(timeout="1s"), {"what": "x"})
    await until(api, run_id, step_status("ok", "scheduled"))
    await asyncio.sleep(1.2)
    r = await decide(api, run_id, "ok", {"decision": "approve"})
    assert r.status_code == 409, r.text
    assert r.json()["error"] in ("approval_timed_out", "approval_not_waiting", "run_finished")
    run = await until(api, run_id, finished)
    assert (run["status"], run["error_type"]) == ("failed", "ApprovalRejected"), run


async def test_only_the_approvals_approvers_and_project_may_decide_it(api: RunningApi) -> None:
    run_id = await run_of(api, approval(approvers={"roles": ["admin"]}), {"what": "x"})
    await until(api, run_id, step_status("ok", "scheduled"))
    for role in ("operator", "viewer", "editor"):
        r = await decide(api, run_id, "ok", {"decision": "approve"}, await api.key(role))
        assert (r.status_code, r.json()["error"]) == (403, "not_an_approver"), (role, r.text)
    listed = (await api.client.get("/api/approvals",
                                   headers=api.headers(await api.key("operator")))).json()
    assert [a["may_decide"] for a in listed["items"] if a["run_id"] == run_id] == [False]
    other = await api.key("admin", "elsewhere")
    r = await decide(api, run_id, "ok", {"decision": "approve"}, other)
    assert (r.status_code, r.json()["error"]) == (404, "unknown_run"), r.text
    assert run_id not in {a["run_id"] for a in (await api.client.get(
        "/api/approvals", headers=api.headers(other))).json()["items"]}
    run = (await api.client.get(f"/api/executions/{run_id}")).json()
    assert run["status"] == "running" and step_status("ok", "scheduled")(run)
    assert (await decide(api, run_id, "ok", {"decision": "approve"})).status_code == 202
    assert (await until(api, run_id, finished))["status"] == "completed"


async def test_an_approval_for_named_keys_is_theirs_whatever_their_role(
        api: RunningApi) -> None:
    keys = api.app.state.security.keys
    named = await keys.create(api.settings.project, "viewer", name="approver", created_by="t")
    run_id = await run_of(api, approval(approvers={"keys": [named.info.key_id]}), {"what": "x"})
    await until(api, run_id, step_status("ok", "scheduled"))
    r = await decide(api, run_id, "ok", {"decision": "approve"}, await api.key("admin"))
    assert (r.status_code, r.json()["error"]) == (403, "not_an_approver"), r.text
    r = await decide(api, run_id, "ok", {"decision": "approve", "comment": "as named"},
                     named.key)
    assert r.status_code == 202, r.text
    assert (await until(api, run_id, finished))["status"] == "completed"
    [decided] = [e for e in await events(api, run_id) if e["event_type"] == "ApprovalDecided"]
    assert decided["payload"]["decided_by"] == f"key:{named.info.key_id}"


async def test_a_signal_resumes_a_waiting_run(api: RunningApi) -> None:
    run_id = await run_of(api, waiting())
    await until(api, run_id, step_status("w", "scheduled"))
    r = await api.client.post(f"/api/executions/{run_id}/signals/go", json={"n": "x"})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_signal"), r.text
    r = await api.client.post(f"/api/executions/{run_id}/signals/stop", json={"n": 1})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_signal"), r.text
    r = await api.client.post(f"/api/executions/{run_id}/signals/go", json={"n": 5})
    assert r.status_code == 202, r.text
    run = await until(api, run_id, finished)
    assert run["status"] == "completed", run
    assert {s["step_id"]: s["output"] for s in run["steps"]}["after"] == 5
    types = [e["event_type"] for e in await events(api, run_id)]
    assert types.count("SignalReceived") == 1 and "SignalDelivered" in types
    r = await api.client.post(f"/api/executions/{run_id}/signals/go", json={"n": 6})
    assert (r.status_code, r.json()["error"]) == (409, "run_finished"), r.text
    r = await api.client.post("/api/executions/no-such-run/signals/go", json={"n": 6})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_run"), r.text


async def test_a_signal_sent_before_the_run_waits_is_kept_for_it(api: RunningApi) -> None:
    run_id = await run_of(api, waiting({"id": "nap", "type": "delay", "duration": "3s"}))
    await until(api, run_id, step_status("nap", "scheduled"))
    r = await api.client.post(f"/api/executions/{run_id}/signals/go", json={"n": 9})
    assert r.status_code == 202, r.text
    run = await until(api, run_id, finished)
    assert run["status"] == "completed", run
    assert {s["step_id"]: s["output"] for s in run["steps"]}["after"] == 9
    types = [e["event_type"] for e in await events(api, run_id)]
    assert types.index("SignalReceived") < types.index("TimerFired") \
        < types.index("SignalDelivered")


async def test_a_bad_signal_from_kafka_is_dead_lettered_with_its_reason(
        api: RunningApi) -> None:
    run_id = await run_of(api, waiting())
    run = await until(api, run_id, step_status("w", "scheduled"))
    cmd = SignalRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id=run["workflow_id"],
                    occurred_at=datetime.now(timezone.utc), name="go", payload={"n": "many"})
    async with RecordProducer(api.settings) as producer:
        await producer.send(cmd)
    deadline = time.monotonic() + 30
    while True:
        letters = (await api.client.get("/api/dead-letters",
                                        params={"error_type": "SignalRefused"})).json()["items"]
        mine = [d for d in letters if run_id in d["reason"]]
        if mine:
            break
        assert time.monotonic() < deadline, letters
        await asyncio.sleep(0.3)
    assert "payload_schema" in mine[0]["reason"]
    run = (await api.client.get(f"/api/executions/{run_id}")).json()
    assert run["status"] == "running" and step_status("w", "scheduled")(run)


async def test_the_ui_inbox_shows_an_approval_with_its_context_and_approves_it(
        api: RunningApi) -> None:
    run_id = await run_of(api, approval(answer_schema=SIZE), {"what": "the UI"})
    await until(api, run_id, step_status("ok", "scheduled"))
    viewer = await signed_in(api, await api.key("viewer"))
    operator = await signed_in(api, await api.key("operator"))
    try:
        seen = await get_page(viewer, "/ui/approvals")
        [card] = seen.all("section", cls="approval", data_run_id=run_id)
        assert "ship the UI?" in card.inner_text and not seen.all("form", cls="approval-form")
        page = await get_page(operator, "/ui/approvals")
        text = html.unescape(page.html)
        assert "ship the UI?" in text and '"what": "the UI"' in text  # the run's input
        action = f"/ui/approvals/{run_id}/ok"
        bad = await operator.post(action, data={"csrf_token": page.csrf(), "decision": "approve",
                                                "answer": "{size"})
        assert bad.status_code == 422 and "not JSON" in bad.text, bad.text
        wrong = await operator.post(action, data={"csrf_token": page.csrf(),
                                                  "decision": "approve", "answer": '{"size": "x"}'})
        assert wrong.status_code == 422 and "answer_schema" in wrong.text, wrong.text
        refused = await viewer.post(action, data={"csrf_token": seen.csrf(),
                                                  "decision": "approve", "answer": '{"size": 1}'})
        assert refused.status_code == 403, refused.text
        r = await operator.post(action, data={"csrf_token": page.csrf(), "decision": "approve",
                                              "answer": '{"size": 7}', "comment": "from the UI"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/approvals?done=approve"
        run = await until(api, run_id, finished)
        assert run["status"] == "completed", run
        assert {s["step_id"]: s["output"] for s in run["steps"]}["after"] == {"size": 7}
        after = Page(await operator.get("/ui/approvals?done=approve"))
        assert after.by_id("decision-sent") is not None and run_id not in after.html
    finally:
        await viewer.aclose()
        await operator.aclose()
