"""The web UI against the real API, engine and projector: pages show what the API serves, actions
act through the API's own paths, roles and CSRF are enforced, secrets never reach a page."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime, timezone
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bend.server.testing import RunningApi, api_beside
from bend.core.commands import StartRun
from bend.devstack.engine import Engine
from bend.kafka.producer import RecordProducer
from tests.e2e.web_pages import Page, get_page, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "research_agent.yaml"
WAITER: dict[str, Any] = {
    "name": "waiter",
    "steps": [{"id": "nap", "type": "delay", "duration": "60s"},
              {"id": "after_nap", "type": "transform", "expression": "'woke'",
               "after": ["nap"]}],
}
FAILER: dict[str, Any] = {
    "name": "failer",
    "steps": [{"id": "wobbly", "type": "tool", "component": "flaky@1",
               "inputs": {"fail_attempts": 9},
               "retry": {"max_attempts": 2, "initial_interval": "200ms", "backoff": 1}}],
}


@pytest.fixture(scope="module")
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    async with api_beside(engine.settings) as running:
        yield running


@pytest.fixture(scope="module")
async def operator(api: RunningApi) -> AsyncIterator[httpx.AsyncClient]:
    client = await signed_in(api, await api.key("operator"))
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
async def viewer(api: RunningApi) -> AsyncIterator[httpx.AsyncClient]:
    client = await signed_in(api, await api.key("viewer"))
    yield client
    await client.aclose()


async def _workflow(api: RunningApi, definition: dict[str, Any]) -> str:
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code == 201, r.text
    await api.client.get("/api/workflows", params={"wait_for": r.json()["position"]["token"]})
    return r.json()["workflow_id"]


async def _until(api: RunningApi, run_id: str, statuses: set[str],
                 timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = await api.client.get(f"/api/executions/{run_id}")
        if r.status_code == 200 and r.json()["status"] in statuses:
            return r.json()
        assert time.monotonic() < deadline, f"run {run_id} not {statuses}: {r.text[:500]}"
        await asyncio.sleep(0.2)


async def _start_in_ui(client: httpx.AsyncClient, workflow_id: str, run_input: str) -> str:
    page = await get_page(client, f"/ui/workflows/{workflow_id}")
    assert page.status == 200 and page.by_id("action-start") is not None
    r = await client.post(f"/ui/workflows/{workflow_id}/start",
                          data={"csrf_token": page.csrf(), "input": run_input})
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/ui/runs/([0-9a-f-]+)", r.headers["location"])
    assert match, r.headers["location"]
    return match.group(1)


@pytest.fixture(scope="module")
async def example_run(api: RunningApi, engine: Engine, operator: httpx.AsyncClient
                      ) -> dict[str, Any]:
    """The example workflow started from its page, finished; with its workflow id."""
    workflow_id = await _workflow(api, yaml.safe_load(EXAMPLE.read_text()))
    run_id = await _start_in_ui(operator, workflow_id, f'{{"topic": "event sourcing", '
                                                       f'"llm_base_url": "{engine.llm.base_url}"}}')
    run = await _until(api, run_id, {"completed", "failed", "cancelled"}, timeout_s=90)
    assert run["status"] == "completed", run
    return {**run, "workflow_id": workflow_id}


async def test_a_wrong_credential_is_refused_with_a_reason_and_no_cookie(
        api: RunningApi) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app),
                                 base_url="http://bend.test") as client:
        r = await client.get("/ui/runs/some-run")
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/login?next=/ui/runs/some-run"
        page = Page(await client.post("/ui/login", data={"credential": "bend_abc_wrong"}))
        assert page.status == 401
        error = page.by_id("login-error")
        assert error is not None and "not valid" in error.inner_text
        assert "bend_session" not in client.cookies
        page = Page(await client.post("/ui/login", data={"credential": "not-a-token"}))
        assert page.status == 401 and page.by_id("login-error") is not None


async def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(
        api: RunningApi) -> None:
    client = await signed_in(api, await api.key("viewer"))
    try:
        cookie = next(c for c in client.cookies.jar if c.name == "bend_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert cookie.get_nonstandard_attr("SameSite", "").lower() == "strict"
        page = await get_page(client, "/ui/runs")
        who = page.by_id("whoami")
        assert who is not None and who.attrs["data-role"] == "viewer"
        r = await client.post("/ui/logout", data={"csrf_token": page.csrf()})
        assert r.status_code == 303
        assert (await client.get("/ui/runs")).status_code == 303
    finally:
        await client.aclose()


async def test_the_example_run_page_shows_what_the_api_serves(
        api: RunningApi, operator: httpx.AsyncClient, example_run: dict[str, Any]) -> None:
    run_id = example_run["run_id"]
    page = await get_page(operator, f"/ui/runs/{run_id}")
    assert page.status == 200 and page.by_id("page-run") is not None
    assert page.by_id("run-status").attrs["data-status"] == "completed"
    assert "script-src 'self'" in page.response.headers["content-security-policy"]

    graph = (await api.client.get(f"/api/executions/{run_id}/graph")).json()
    want = {n["id"]: ("pending" if n["status"] == "not_started" else n["status"])
            for n in graph["nodes"]}
    nodes = page.all("g", "graph-node")
    assert {n.attrs["data-step-id"]: n.attrs["data-status"] for n in nodes} == want
    assert want["nothing_found"] == "skipped" and want["research"] == "succeeded"
    edges = {(e.attrs["data-from"], e.attrs["data-to"]) for e in page.all("path", "graph-edge")}
    assert edges == {(e["source"], e["target"]) for e in graph["edges"]}

    steps = {s["step_id"]: s for s in example_run["steps"]}
    bars = page.all("g", "timeline-bar")
    latest: dict[str, Any] = {}
    for bar in bars:
        latest[bar.attrs["data-step-id"]] = bar
    assert {s: b.attrs["data-status"] for s, b in latest.items()} == \
        {s: row["status"] for s, row in steps.items()}
    assert all(int(b.attrs["data-attempt"]) == steps[s]["attempts"] for s, b in latest.items())

    events = (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]
    rows = page.all("tr", "event-row")
    assert [(int(r.attrs["data-seq"]), r.attrs["data-type"]) for r in rows] == \
        [(e["seq"], e["event_type"]) for e in events]
    assert events[0]["position"]["topic"] in page.html

    research = page.all("section", "step-detail", data_step_id="research")
    assert research, "no detail panel for the agent step"
    calls = [e for e in page.all("div", "llm-call")]
    llm_events = [e for e in events if e["event_type"] == "AgentLlmCallRecorded"]
    assert len(calls) == len(llm_events) > 0
    assert "tokens" in calls[0].inner_text
    waiting = page.by_id("waiting-on")
    assert waiting is not None and "finished" in waiting.inner_text

    replay = await get_page(operator, page.by_id("replay-link").attrs["href"])
    assert replay.status == 200 and replay.by_id("page-replay") is not None
    assert replay.by_id("replay-result").attrs["data-consistent"] == "true", replay.html[-3000:]
    folded = {r.attrs["data-step-id"] for r in replay.all("tr", "replay-attempt")}
    assert folded == set(steps)


async def test_the_workflow_page_draws_the_definition_and_lists_versions(
        api: RunningApi, operator: httpx.AsyncClient, example_run: dict[str, Any]) -> None:
    workflow_id = example_run["workflow_id"]
    page = await get_page(operator, "/ui/workflows?q=research")
    assert [r.attrs["data-workflow-id"] for r in page.all("tr", "workflow-row")] == [workflow_id]
    assert page.by_id("workflow-search") is not None
    page = await get_page(operator, f"/ui/workflows/{workflow_id}")
    detail = (await api.client.get(f"/api/workflows/{workflow_id}")).json()
    types = {n.attrs["data-step-id"]: n.attrs["data-node-type"]
             for n in page.all("g", "graph-node")}
    assert types == {s["id"]: s["type"] for s in detail["definition"]["steps"]}
    assert ("found", "read_pages") in {(e.attrs["data-from"], e.attrs["data-to"])
                                       for e in page.all("path", "graph-edge")}
    assert len(page.all("tr", "version-row")) == len(detail["versions"]) == 1
    r = await api.client.post(f"/api/workflows/{workflow_id}/triggers", json={"definition": {
        "type": "schedule", "schedule": {"cron": "30 2 * * *"}, "input": {"topic": "nightly"}}})
    assert r.status_code == 201, r.text
    trigger = (await api.client.get(f"/api/triggers/{r.json()['trigger_id']}",
                                    params={"wait_for": r.json()["position"]["token"]})).json()
    page = await get_page(operator, f"/ui/workflows/{workflow_id}")
    (row,) = page.all("tr", "trigger-row", data_trigger_id=trigger["trigger_id"])
    (fire,) = [e for e in page.all("td", "next-fire")]
    due = trigger["state"]["next_due_at"].replace("Z", "+00:00")
    assert any(e.attrs.get("datetime") == datetime.fromisoformat(due).isoformat()
               for e in page.all("time")), (due, fire.inner_text)
    assert "30 2 * * *" in row.inner_text
    assert page.by_id("definition-graph") is not None
    empty = await get_page(operator, "/ui/workflows?q=no-such-thing-here")
    assert empty.all("tr", "workflow-row") == []


async def test_a_viewer_finds_no_actions_and_is_refused_them(
        api: RunningApi, viewer: httpx.AsyncClient, example_run: dict[str, Any]) -> None:
    run_page = await get_page(viewer, f"/ui/runs/{example_run['run_id']}")
    wf_page = await get_page(viewer, f"/ui/workflows/{example_run['workflow_id']}")
    assert run_page.status == wf_page.status == 200
    for page in (run_page, wf_page):
        for action in ("action-start", "action-cancel", "action-fork", "action-retry"):
            assert page.by_id(action) is None, action
        assert page.all(cls="action-retry") == [] and page.all(cls="action-redrive") == []
    assert "dead-letters" not in {a.attrs.get("href", "").rsplit("/", 1)[-1]
                                  for a in run_page.all("a")}
    before = await api.log_ends()
    r = await viewer.post(f"/ui/runs/{example_run['run_id']}/fork",
                          data={"csrf_token": run_page.csrf(), "step_id": "research"})
    page = Page(r)
    assert page.status == 403 and "viewer" in page.by_id("error-message").inner_text
    assert await api.log_ends() == before  # nothing was produced


async def test_a_form_without_the_sessions_csrf_token_is_refused(
        api: RunningApi, operator: httpx.AsyncClient) -> None:
    workflow_id = await _workflow(api, WAITER)
    run_id = await _start_in_ui(operator, workflow_id, "{}")
    await _until(api, run_id, {"running"})
    for data in ({}, {"csrf_token": "0" * 64}):
        page = Page(await operator.post(f"/ui/runs/{run_id}/cancel", data=data))
        assert page.status == 403 and "CSRF" in page.by_id("error-message").inner_text
    assert (await api.client.get(f"/api/executions/{run_id}")).json()["status"] == "running"
    await api.client.post(f"/api/executions/{run_id}/cancel", json={"reason": "cleanup"})


async def test_a_waiting_run_says_on_what_and_is_cancelled_from_its_page(
        api: RunningApi, operator: httpx.AsyncClient) -> None:
    workflow_id = await _workflow(api, WAITER)
    run_id = await _start_in_ui(operator, workflow_id, "{}")
    await _until(api, run_id, {"running"})
    deadline = time.monotonic() + 20
    while True:  # the timer row lands a moment after the run starts
        page = await get_page(operator, f"/ui/runs/{run_id}")
        timers = page.all("li", "reason", data_kind="timer")
        if timers or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert timers and "nap" in timers[0].inner_text, page.by_id("waiting-on").inner_text
    nap = page.all("g", "graph-node", data_step_id="nap")[0]
    assert nap.attrs["data-status"] == "scheduled"
    assert page.all("g", "graph-node", data_step_id="after_nap")[0].attrs["data-status"] == \
        "pending"
    assert page.by_id("cancel-run") is not None
    r = await operator.post(f"/ui/runs/{run_id}/cancel", data={"csrf_token": page.csrf()})
    assert (r.status_code, r.headers["location"]) == (303, f"/ui/runs/{run_id}")
    run = await _until(api, run_id, {"cancelled", "completed", "failed"}, timeout_s=30)
    assert run["status"] == "cancelled" and "web UI" in run["cancel_reason"]
    page = await get_page(operator, f"/ui/runs/{run_id}")
    assert page.by_id("run-status").attrs["data-status"] == "cancelled"
    assert page.by_id("action-cancel") is None
    stream = await operator.get(f"/ui/runs/{run_id}/stream")  # finished: state, then end
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert '"status": "cancelled"' in stream.text and "event: end" in stream.text


async def test_a_fork_with_changed_input_and_a_retried_step_start_new_runs(
        api: RunningApi, operator: httpx.AsyncClient, example_run: dict[str, Any]) -> None:
    source = example_run["run_id"]
    page = await get_page(operator, f"/ui/runs/{source}")
    r = await operator.post(f"/ui/runs/{source}/fork", data={
        "csrf_token": page.csrf(), "step_id": "research",
        "input": '{{"topic": "forks", "llm_base_url": "{}"}}'.format(example_run["input"]["llm_base_url"])})
    assert r.status_code == 303, r.text
    forked = r.headers["location"].rsplit("/", 1)[-1]
    run = await _until(api, forked, {"completed", "failed"}, timeout_s=90)
    assert (run["forked_from_run_id"], run["input"]["topic"]) == (source, "forks")

    workflow_id = await _workflow(api, FAILER)
    failing = await _start_in_ui(operator, workflow_id, "{}")
    await _until(api, failing, {"failed"}, timeout_s=60)
    page = await get_page(operator, f"/ui/runs/{failing}")
    bars = page.all("g", "timeline-bar", data_step_id="wobbly")
    assert [(b.attrs["data-attempt"], b.attrs["data-status"]) for b in bars] == \
        [("1", "failed"), ("2", "failed")]
    assert page.html.count('class="seg seg-backoff"') == 1
    retry = page.all("form", "action-retry", data_step_id="wobbly")
    assert retry and page.by_id("action-fork") is not None
    r = await operator.post(f"/ui/runs/{failing}/retry",
                            data={"csrf_token": page.csrf(), "step_id": "wobbly"})
    assert r.status_code == 303, r.text
    again = await _until(api, r.headers["location"].rsplit("/", 1)[-1], {"failed", "completed"})
    assert again["forked_from_run_id"] == failing
    assert again["input"] == (await api.client.get(f"/api/executions/{failing}")).json()["input"]


async def test_secrets_are_masked_and_long_values_are_cut_with_the_whole_behind_details(
        api: RunningApi, operator: httpx.AsyncClient) -> None:
    secret = "s3cr3t-value-that-must-not-show"
    r = await api.client.put("/api/secrets/ui_test_secret", json={"value": secret})
    assert r.status_code in (200, 201), r.text
    workflow_id = await _workflow(api, {"name": "echo", "steps": [
        {"id": "echo", "type": "transform", "expression": "input"}]})
    long_text = "word " * 400
    run_id = await _start_in_ui(operator, workflow_id, f'{{"note": "{secret}", "password": "hunter2", '
                                                       f'"long": "{long_text}"}}')
    await _until(api, run_id, {"completed"})
    page = await get_page(operator, f"/ui/runs/{run_id}")
    assert secret not in page.html and "hunter2" not in page.html
    assert "***" in page.html
    assert page.all("details") and long_text.strip() in page.html  # whole, behind <details>
    assert "show all" in page.html


async def test_the_runs_list_matches_the_api_and_its_stream_reports_statuses(
        api: RunningApi, operator: httpx.AsyncClient, example_run: dict[str, Any]) -> None:
    page = await get_page(operator, f"/ui/runs?workflow={example_run['workflow_id']}")
    listed = (await api.client.get("/api/executions",
                                   params={"workflow_id": example_run["workflow_id"]})).json()
    rows = page.all("tr", "run-row")
    assert [(r.attrs["data-run-id"], r.attrs["data-status"]) for r in rows] == \
        [(i["run_id"], i["status"]) for i in listed["items"]]
    assert page.by_id("run-filters") is not None
    failed = await get_page(operator, "/ui/runs?status=failed")
    assert {r.attrs["data-status"] for r in failed.all("tr", "run-row")} <= {"failed"}
    stream = await operator.get("/ui/runs/stream", params={"run_id": example_run["run_id"]})
    assert "event: status" in stream.text and '"completed"' in stream.text
    assert "event: end" in stream.text
    first = await get_page(operator, "/ui/runs")
    newest = first.by_id("run-table").attrs["data-newest"]
    assert newest and first.by_id("new-runs") is not None
    run = await api.client.post(f"/api/workflows/{example_run['workflow_id']}/execute",
                                json={"input": {"topic": "new", "llm_base_url": "x"}})
    await api.client.get("/api/executions", params={"wait_for": run.json()["position"]["token"]})
    stream = await operator.get("/ui/runs/stream", params={"newest": newest, "follow_s": 1.5})
    assert 'event: new\ndata: {"count": 1}' in stream.text, stream.text
    assert "event: timeout" in stream.text
    stream = await operator.get("/ui/runs/stream", params={
        "newest": newest, "status": "cancelled", "follow_s": 1.0})
    assert "event: new" not in stream.text  # the new run does not match the filter
    bad = await get_page(operator, "/ui/runs?since=yesterday")
    assert bad.status == 422 and "since" in bad.by_id("error-message").inner_text


async def test_unknown_pages_answer_404_pages(operator: httpx.AsyncClient) -> None:
    for path in ("/ui/runs/no-such-run", "/ui/workflows/no-such-workflow", "/ui/nowhere"):
        page = await get_page(operator, path)
        assert page.status == 404 and page.by_id("page-error") is not None, path
        assert "not found" in page.html.lower() or "no page" in page.html.lower()


async def test_the_components_page_lists_the_registry_with_schemas(
        api: RunningApi, operator: httpx.AsyncClient) -> None:
    page = await get_page(operator, "/ui/components")
    names = {r.attrs["data-component"] for r in page.all("tr", "component-row")}
    listed = (await api.client.get("/api/components")).json()["items"]
    assert names == {c["name"] for c in listed} and "web_search" in names
    assert "input-schema" in page.html


async def test_a_dead_letter_is_listed_inspected_and_redriven_by_an_operator_only(
        api: RunningApi, operator: httpx.AsyncClient, viewer: httpx.AsyncClient) -> None:
    run_id = str(uuid.uuid4())
    start = StartRun(event_id=str(uuid.uuid4()), run_id=run_id,
                     workflow_id=f"wf-missing-{run_id[:8]}", workflow_version=0,
                     occurred_at=datetime.now(timezone.utc), correlation_id=run_id,
                     input={"n": 1})  # no definition, unknown workflow: dead-lettered
    async with RecordProducer(api.settings) as producer:
        await producer.send(start)
    deadline = time.monotonic() + 45
    while True:
        page = await get_page(operator, "/ui/dead-letters?error_type=UnknownWorkflowId")
        rows = page.all("tr", "dead-letter-row")
        if rows or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert rows, "the StartRun was never dead-lettered"
    letter = rows[0].attrs["data-event-id"]
    assert rows[0].attrs["data-redriven"] == "false"
    assert page.all("form", "action-redrive", data_event_id=letter)
    detail = await get_page(operator, f"/ui/dead-letters/{letter}")
    assert detail.status == 200 and run_id in detail.html and "StartRun" in detail.html
    assert "register the workflow" in detail.html

    viewer_page = await get_page(viewer, "/ui/dead-letters")
    assert viewer_page.status == 403  # payloads may hold user data: not for viewers
    editor = await signed_in(api, await api.key("editor"))
    try:
        seen = await get_page(editor, "/ui/dead-letters")
        assert seen.all("tr", "dead-letter-row") and seen.all(cls="action-redrive") == []
        refused = await editor.post(f"/ui/dead-letters/{letter}/redrive",
                                    data={"csrf_token": seen.csrf()})
        assert refused.status_code == 403
    finally:
        await editor.aclose()

    r = await operator.post(f"/ui/dead-letters/{letter}/redrive",
                            data={"csrf_token": page.csrf()})
    assert (r.status_code, r.headers["location"]) == (303, f"/ui/dead-letters/{letter}")
    detail = await get_page(operator, f"/ui/dead-letters/{letter}")
    assert detail.by_id("dead-letter-detail").attrs["data-redriven"] == "true"
    again = Page(await operator.post("/ui/dead-letters/redrive",
                                     data={"csrf_token": page.csrf(), "event_id": letter}))
    assert again.status == 409 and "force" in again.by_id("error-message").inner_text
    shown = (await api.client.get(f"/api/dead-letters/{letter}")).json()
    assert shown["redrive_count"] == 1
