"""Backtests end to end: the real engine (orchestrator, executor, projector), the scripted model
and a local HTTP server, each counting its requests. Twenty recorded runs of an agent followed
by pure steps and an http call are backtested with a changed prompt: the model is called once
per run (the changed step), the http server never; the comparison says which outputs changed.
Refusals (a missing step, a bad change, another project's run or workflow, a viewer) start
nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bend.devstack.engine import Engine
from bend.devstack.llm_server import ServerHandle
from bend.server.testing import RunningApi
from tests.e2e.backtesting import NEW_PROMPT, Hook, served_hook, workflow
from tests.e2e.web_pages import get_page, signed_in
from tests.e2e.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

RUNS = 20
@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[Hook, ServerHandle]]:
    with served_hook() as served:
        yield served



async def register(api: RunningApi, definition: dict[str, Any],
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await api.client.post("/api/workflows", json=definition, headers=headers)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def run_all(api: RunningApi, wf: dict[str, Any], inputs: list[dict[str, Any]],
                  headers: dict[str, str] | None = None) -> list[str]:
    ids = []
    for run_input in inputs:
        r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                                  json={"input": run_input}, headers=headers,
                                  params={"wait_for": wf["position"]["token"]})
        assert r.status_code == 202, r.text
        ids.append(r.json()["run_id"])

    async def all_done() -> bool:
        for run_id in ids:
            run = (await api.client.get(f"/api/executions/{run_id}", headers=headers)).json()
            if run.get("status") != "completed":
                assert run.get("status") not in ("failed", "cancelled"), run
                return False
        return True

    await until(all_done, 150)
    return ids


async def test_a_backtest_of_twenty_runs_calls_the_model_only_for_the_changed_step(
        api: RunningApi, engine: Engine, hook: tuple[Hook, ServerHandle]) -> None:
    counting, handle = hook
    wf = await register(api, workflow(engine.llm.base_url, f"{handle.url}/hook"))
    inputs = [{"topic": f"subject {i}", "suffix": "" if i % 2 else " in depth"}
              for i in range(RUNS)]
    llm_before, hook_before = engine.llm.state.requests, counting.requests
    sources = await run_all(api, wf, inputs)
    assert engine.llm.state.requests - llm_before == RUNS
    assert counting.requests - hook_before == RUNS

    llm_before, hook_before = engine.llm.state.requests, counting.requests
    r = await api.client.post("/api/backtests", json={
        "workflow_id": wf["workflow_id"], "step_id": "research",
        "changes": {"prompt": NEW_PROMPT}, "status": ["completed"], "limit": RUNS})
    assert r.status_code == 202, r.text
    started = r.json()
    assert sorted(p["source_run_id"] for p in started["runs"]) == sorted(sources)
    backtest_id = started["backtest_id"]

    async def finished() -> dict[str, Any] | None:
        got = await api.client.get(f"/api/backtests/{backtest_id}")
        body = got.json() if got.status_code == 200 else None
        return body if body and body["finished"] and len(body["runs"]) == RUNS else None

    result = await until(finished, 150)
    assert engine.llm.state.requests - llm_before == RUNS  # the changed step, once a run
    assert counting.requests == hook_before  # the http step's recorded output was reused

    summary = result["summary"]
    assert (summary["runs"], summary["changed"], summary["unchanged"], summary["failed"],
            summary["pending"]) == (RUNS, RUNS // 2, RUNS // 2, 0, 0), summary
    by_source = {c["source_run_id"]: c for c in result["runs"]}
    for run_id, run_input in zip(sources, inputs, strict=True):
        c = by_source[run_id]
        assert c["verdict"] == ("changed" if run_input["suffix"] else "unchanged"), c
        assert c["backtest"]["status"] == "completed"
        assert c["backtest"]["llm_calls"] == c["original"]["llm_calls"] == 1
        if run_input["suffix"]:
            assert c["output_diff"] and c["output_diff"][0].startswith("$.headline:"), c
            assert "in depth" in c["backtest"]["output"]["headline"]
        # the http call's recorded answer, reused: the same body as the original's
        assert c["backtest"]["output"]["published"] == c["original"]["output"]["published"]
    assert summary["tokens_delta"] > 0  # " in depth" is two more words, in half the prompts

    listed = (await api.client.get("/api/executions",
                                   params={"workflow_id": wf["workflow_id"], "limit": 100})).json()
    assert sorted(r["run_id"] for r in listed["items"]) == sorted(sources)  # backtests left out
    mine = (await api.client.get("/api/executions", params={
        "backtest_id": backtest_id, "limit": 100})).json()
    assert sorted(r["run_id"] for r in mine["items"]) == sorted(c["run_id"]
                                                               for c in result["runs"])
    assert {r["backtest_id"] for r in mine["items"]} == {backtest_id}
    page = (await api.client.get("/api/backtests",
                                 params={"workflow_id": wf["workflow_id"]})).json()
    assert [b["backtest_id"] for b in page["items"]] == [backtest_id]
    assert page["items"][0]["finished_runs"] == RUNS

    # With live_downstream, the http step after the changed one is called again.
    llm_before, hook_before = engine.llm.state.requests, counting.requests
    r = await api.client.post("/api/backtests", json={
        "workflow_id": wf["workflow_id"], "step_id": "research", "run_ids": sources[:2],
        "changes": {"prompt": NEW_PROMPT}, "live_downstream": True})
    assert r.status_code == 202, r.text
    live_id = r.json()["backtest_id"]

    async def live_done() -> dict[str, Any] | None:
        got = await api.client.get(f"/api/backtests/{live_id}")
        body = got.json() if got.status_code == 200 else None
        return body if body and body["finished"] and len(body["runs"]) == 2 else None

    live = await until(live_done, 90)
    assert live["live_downstream"] and live["summary"]["failed"] == 0, live["summary"]
    assert engine.llm.state.requests - llm_before == 2
    assert counting.requests - hook_before == 2

    ui = await signed_in(api, await api.key("viewer"))  # the UI pages, as a viewer
    try:
        listing = await get_page(ui, f"/ui/backtests?workflow_id={wf['workflow_id']}")
        assert listing.status == 200
        assert [r.attrs["data-backtest-id"] for r in listing.all("tr", "backtest-row")] == \
            [live_id, backtest_id]
        shown = await get_page(ui, f"/ui/backtests/{backtest_id}")
        assert shown.status == 200
        verdicts = [r.attrs["data-verdict"] for r in shown.all("tr", "comparison-row")]
        assert sorted(verdicts) == sorted(["changed"] * (RUNS // 2) + ["unchanged"] * (RUNS // 2))
        changed_count = shown.by_id("count-changed")
        assert changed_count is not None and changed_count.inner_text.strip() == str(RUNS // 2)
        assert "in depth" in shown.html
        run_page = await get_page(ui, f"/ui/runs/{result['runs'][0]['run_id']}")
        link = run_page.by_id("run-backtest")
        assert link is not None and link.attrs["href"] == f"/ui/backtests/{backtest_id}"
    finally:
        await ui.aclose()


async def test_backtests_that_cannot_run_are_refused_with_the_reason_and_start_nothing(
        api: RunningApi, engine: Engine, hook: tuple[Hook, ServerHandle]) -> None:
    _, handle = hook
    wf = await register(api, workflow(engine.llm.base_url, f"{handle.url}/hook"))
    other_wf = await register(api, {"name": "other_desk", "steps": [
        {"id": "prep", "type": "transform", "expression": "input.topic"}]})
    [run_id] = await run_all(api, wf, [{"topic": "refusals", "suffix": ""}])
    [other_run] = await run_all(api, other_wf, [{"topic": "elsewhere"}])
    elsewhere = api.headers(await api.key("admin", project="elsewhere"))
    their_wf = await register(api, workflow(engine.llm.base_url, f"{handle.url}/hook"),
                              headers=elsewhere)
    viewer = api.headers(await api.key("viewer"))
    base = {"workflow_id": wf["workflow_id"], "step_id": "research",
            "changes": {"prompt": NEW_PROMPT}}
    cases: list[tuple[dict[str, Any], dict[str, str] | None, int, str, str]] = [
        ({**base, "step_id": "nope"}, None, 422, "unknown_step", "prep, research, headline"),
        ({**base, "changes": {"promt": "x"}}, None, 422, "invalid_override", "no field 'promt'"),
        ({**base, "changes": {"type": "tool"}}, None, 422, "invalid_override", "cannot change"),
        ({**base, "changes": {}}, None, 422, "invalid_override", "the change is empty"),
        ({**base, "run_ids": [other_run]}, None, 422, "run_not_backtestable",
         "not of " + wf["workflow_id"]),
        # another project's run is unknown to the caller, and so is its workflow
        ({**base, "workflow_id": their_wf["workflow_id"], "run_ids": [run_id]}, elsewhere, 404,
         "unknown_run", run_id),
        (base, elsewhere, 404, "unknown_workflow", wf["workflow_id"]),
        ({**base, "since": "2099-01-01T00:00:00Z"}, None, 422, "no_runs_to_backtest", "widen"),
        (base, viewer, 403, "", ""),
    ]
    async def api_topics() -> dict[tuple[str, int], int]:  # what the API writes to
        return {tp: end for tp, end in (await api.log_ends()).items()
                if tp[0].endswith((".workflows", ".commands"))}

    await asyncio.sleep(1)  # the last run's commands are in
    ends = await api_topics()
    for body, headers, status, error, says in cases:
        r = await api.client.post("/api/backtests", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if error:
            assert r.json()["error"] == error, r.text
            assert says in r.json()["detail"], r.text
    assert await api_topics() == ends  # nothing was sent: no backtest, no fork
    assert (await api.client.get("/api/backtests/no-such-backtest")).json()["error"] == \
        "unknown_backtest"


async def test_an_operator_starts_a_backtest_from_its_page_in_the_ui(
        api: RunningApi, engine: Engine, hook: tuple[Hook, ServerHandle]) -> None:
    counting, handle = hook
    wf = await register(api, workflow(engine.llm.base_url, f"{handle.url}/hook"))
    await run_all(api, wf, [{"topic": "ui one", "suffix": " please"},
                            {"topic": "ui two", "suffix": ""}])
    hook_before = counting.requests
    ui = await signed_in(api, await api.key("operator"))
    try:
        listing = await get_page(ui, f"/ui/backtests?workflow_id={wf['workflow_id']}")
        assert listing.by_id("start-backtest") is not None
        fields = {"csrf_token": listing.csrf(), "workflow_id": wf["workflow_id"],
                  "step_id": "research", "status": "completed", "limit": "2"}
        bad = await ui.post("/ui/backtests", data={**fields, "changes": "{not json"})
        assert bad.status_code == 422 and "the change is not JSON" in bad.text
        missing = await ui.post("/ui/backtests", data={**fields, "step_id": "nope",
                                                       "changes": '{"prompt": "x"}'})
        assert missing.status_code == 422 and "has no step" in missing.text
        r = await ui.post("/ui/backtests", data={
            **fields, "changes": f'{{"prompt": "{NEW_PROMPT}"}}'})
        assert r.status_code == 303, r.text
        where = r.headers["location"]

        async def done() -> Any:
            shown = await get_page(ui, where)
            verdicts = sorted(row.attrs["data-verdict"]
                              for row in shown.all("tr", "comparison-row"))
            return shown if verdicts == ["changed", "unchanged"] else None

        await until(done, 90)
    finally:
        await ui.aclose()
    assert counting.requests == hook_before
    viewer = await signed_in(api, await api.key("viewer"))
    try:
        assert (await get_page(viewer, "/ui/backtests")).by_id("start-backtest") is None
    finally:
        await viewer.aclose()
