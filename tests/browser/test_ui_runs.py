"""Runs in the web UI, in real Chromium on the real engine: the example workflow started from its
page finishes live, its step graph and timeline say what the API says; the runs list follows a
run's status live and pages both ways; a run waiting in a delay is cancelled from its page; a
run is forked from a step with new input, a failed step retried."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import SLEEPY, Browser, Stack, example_definition, json_text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FINISHED = {"completed", "failed", "cancelled"}
_DRAWN = """
const all = (css) => Array.from(document.querySelectorAll(css));
const status = document.querySelector('#run-status');
return {
  status: status ? status.getAttribute('data-status') : null,
  nodes: all('svg#run-graph g.graph-node[data-step-id]').map(
      (e) => [e.getAttribute('data-step-id'), e.getAttribute('data-status')]),
  bars: all('svg#run-timeline g.timeline-bar[data-step-id]').map(
      (e) => [e.getAttribute('data-step-id'), e.getAttribute('data-attempt'),
              e.getAttribute('data-status')]),
};
"""


def drawn(browser: Browser) -> dict[str, Any]:
    """The run page's status, graph nodes and timeline bars, read in one go."""
    return browser.driver.execute_script(_DRAWN)


def differences(run: dict[str, Any], step_ids: list[str], page: dict[str, Any]) -> list[str]:
    """Where the page's run status, graph and timeline differ from the API's `run`."""
    found: list[str] = []
    if page["status"] != run["status"]:
        found.append(f"run status {page['status']!r}, API {run['status']!r}")
    api = {s["step_id"]: s for s in run["steps"]}
    nodes = dict(page["nodes"])
    if len(nodes) != len(page["nodes"]):
        found.append(f"a step drawn twice in the graph: {page['nodes']}")
    if set(nodes) != set(step_ids):
        found.append(f"graph nodes {sorted(nodes)}, definition {sorted(step_ids)}")
    for step_id in step_ids:
        want = api[step_id]["status"] if step_id in api else "pending"
        if nodes.get(step_id) != want:
            found.append(f"graph {step_id}: {nodes.get(step_id)!r}, API {want!r}")
    bars: dict[str, list[tuple[int, str]]] = {}
    for step_id, attempt, status in page["bars"]:
        bars.setdefault(step_id, []).append((int(attempt or 0), status))
    for step_id in sorted(set(bars) - set(api)):
        found.append(f"timeline bar of {step_id}, which the API has not started")
    for step_id, step in api.items():
        mine = sorted(bars.get(step_id, []))
        if step["attempts"] >= 1:
            if [a for a, _ in mine] != list(range(1, step["attempts"] + 1)):
                found.append(f"timeline {step_id}: attempts {[a for a, _ in mine]}, "
                             f"API {step['attempts']}")
            elif mine[-1][1] != step["status"]:
                found.append(f"timeline {step_id}: last attempt {mine[-1][1]!r}, "
                             f"API {step['status']!r}")
        elif any(status != step["status"] for _, status in mine):
            found.append(f"timeline {step_id}: {mine}, API {step['status']!r} (no attempt)")
    return found


def agree(browser: Browser, stack: Stack, run_id: str, step_ids: list[str],
          timeout_s: float = 20.0) -> dict[str, Any]:
    """Wait until the page says what the API says about the run; fail with the differences."""
    last: list[str] = []

    def same() -> dict[str, Any] | None:
        nonlocal last
        run = stack.run(run_id)
        last = differences(run, step_ids, drawn(browser))
        return None if last else run

    try:
        return browser.wait(same, f"the page to agree with the API on run {run_id}", timeout_s,
                            poll_s=0.3)  # each try asks the API too: stay under its rate limit
    except pytest.fail.Exception:
        pytest.fail(f"run page differs from the API: {last}")


def test_the_example_run_started_from_its_page_finishes_live_as_the_api_says(
        browser: Browser, stack: Stack, example_id: str) -> None:
    definition = example_definition()
    step_ids = [s["id"] for s in definition["steps"]]
    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/workflows/{example_id}")
    browser.one('input[name="input.topic"]').send_keys("durable execution")
    browser.one('input[name="input.llm_base_url"]').send_keys(stack.engine.llm.base_url)
    browser.one("button#start-run").click()
    match = browser.wait(lambda: re.fullmatch(r"/ui/runs/([0-9a-f-]{36})", browser.path()),
                         "the new run's page")
    run_id = match.group(1)
    browser.mark()
    browser.wait(lambda: drawn(browser)["status"] in FINISHED, "the run to finish", 60)
    assert browser.marked(), "the page reloaded to show the run's progress"
    run = agree(browser, stack, run_id, step_ids)
    assert run["status"] == "completed", run
    assert browser.marked()
    browser.screenshot("run", max_height=1400)

    browser.open(f"/ui/runs/{run_id}")  # drawn from the read model alone, the same
    assert differences(stack.run(run_id), step_ids, drawn(browser)) == []
    events = browser.read("table#event-log tr.event-row[data-seq]", "data-seq", "data-type")
    seqs = [int(seq or 0) for seq, _ in events]
    assert seqs == list(range(1, run["last_seq"] + 1)), seqs
    assert (events[0][1], events[-1][1]) == ("RunRequested", "RunCompleted")
    research = browser.one("section.step-detail[data-step-id='research']")
    usage = {u["model"]: u["calls"] for u in run["usage"]}
    assert len(research.find_elements("css selector", ".llm-call")) == sum(usage.values())


def test_the_runs_list_follows_a_runs_status_live(
        browser: Browser, stack: Stack, example_run: dict[str, Any]) -> None:
    run_id = stack.asleep()
    browser.sign_in(stack.keys["operator"])
    browser.open("/ui/runs")
    row = f"tr.run-row[data-run-id='{run_id}']"
    assert browser.attr(row, "data-status") == "running"
    assert browser.attr(f"tr.run-row[data-run-id='{example_run['run_id']}']",
                        "data-status") == "completed"
    browser.mark()
    r = stack.client.post(f"/api/executions/{run_id}/cancel", json={"reason": "list test"})
    assert r.status_code == 202, r.text
    browser.wait(lambda: browser.attr(row, "data-status") == "cancelled",
                 "the row to show the run cancelled")
    browser.wait(lambda: "cancelled" in (browser.text(row) or ""), "the row's status text")
    assert browser.marked(), "the list reloaded to show the new status"
    browser.screenshot("runs")

    form = browser.one("form#run-filters")
    status = form.find_element("css selector", "[name='status']")
    if status.tag_name == "select":
        Select(status).select_by_value("completed")
    else:
        status.clear()
        status.send_keys("completed")
    form.submit()
    browser.wait(lambda: "status=completed" in browser.path(), "the filtered list")
    rows = browser.read("tr.run-row[data-run-id]", "data-status", "data-run-id")
    assert {status for status, _ in rows} == {"completed"}
    assert example_run["run_id"] in {run_id for _, run_id in rows}


def test_a_run_waiting_in_a_delay_is_cancelled_from_its_page(
        browser: Browser, stack: Stack) -> None:
    step_ids = [s["id"] for s in SLEEPY["steps"]]
    watched, pressed = stack.asleep(), stack.asleep()
    browser.sign_in(stack.keys["operator"])

    browser.open(f"/ui/runs/{watched}")  # cancelled elsewhere: the open page follows
    run = agree(browser, stack, watched, step_ids)
    fire_at = run["steps"][0]["input"]["fire_at"]
    browser.one("#waiting-on")
    waiting = browser.text("#waiting-on") or ""
    assert "nap" in waiting and fire_at[:10] in waiting and fire_at[11:16] in waiting, waiting
    browser.mark()
    r = stack.client.post(f"/api/executions/{watched}/cancel", json={"reason": "elsewhere"})
    assert r.status_code == 202, r.text
    browser.wait(lambda: drawn(browser)["status"] == "cancelled", "the page to show cancelled")
    assert browser.marked(), "the page reloaded to show the cancel"
    agree(browser, stack, watched, step_ids)

    browser.open(f"/ui/runs/{pressed}")  # cancelled with the page's button
    assert drawn(browser)["status"] == "running"
    browser.one("button#cancel-run").click()
    browser.accept_confirmation()
    browser.wait(lambda: drawn(browser)["status"] == "cancelled",
                 "the page to show the run cancelled, without reloading it by hand", 30)
    run = agree(browser, stack, pressed, step_ids)
    assert {s["step_id"]: s["status"] for s in run["steps"]}["nap"] == "cancelled"
    assert browser.absent("#action-cancel"), "a cancelled run still offers cancel"


PAGER: dict[str, Any] = {
    "name": "pager",
    "steps": [{"id": "echo", "type": "transform", "mapping": {"n": "input.n"}}],
}


def _page_ids(browser: Browser) -> list[str]:
    return [row[0] for row in browser.read("tr.run-row[data-run-id]", "data-run-id")]


def _follow(browser: Browser, link: str) -> list[str]:
    before = browser.path()
    browser.one(link).click()
    browser.wait(lambda: browser.path() != before, f"{link} to open the page it names")
    browser.one("main#page-runs")
    return _page_ids(browser)


def test_the_runs_list_pages_through_a_workflows_runs_both_ways(
        browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register(PAGER)
    r = stack.client.post(f"/api/workflows/{workflow_id}/execute/bulk",
                          json={"inputs": [{"n": n} for n in range(110)]})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60  # finished, so the order no longer moves
    done = {"workflow_id": workflow_id, "status": "completed", "limit": 200}
    while len(listed := stack.client.get("/api/executions", params=done).json()["items"]) < 110:
        assert time.monotonic() < deadline, f"{len(listed)} of 110 runs completed"
        time.sleep(0.5)
    newest_first = [run["run_id"] for run in listed]
    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/runs?workflow={workflow_id}")
    first = _page_ids(browser)
    assert browser.absent("a#prev-page")
    second = _follow(browser, "a#next-page")
    third = _follow(browser, "a#next-page")
    assert browser.absent("a#next-page"), "a page after the last run"
    assert [first, second, third] == [newest_first[:50], newest_first[50:100],
                                      newest_first[100:]]
    assert _follow(browser, "a#prev-page") == second
    assert _follow(browser, "a#prev-page") == first
    assert browser.absent("a#prev-page"), "a page before the newest run"


def _new_run_page(browser: Browser, old_run_id: str) -> str:
    match = browser.wait(
        lambda: (m := re.fullmatch(r"/ui/runs/([0-9a-f-]{36})", browser.path()))
        and m.group(1) != old_run_id and m, "the new run's page")
    return match.group(1)


def test_a_run_forked_from_a_step_with_new_input_runs_from_there(
        browser: Browser, stack: Stack, example_run: dict[str, Any]) -> None:
    calls_before = stack.engine.llm.state.requests
    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/runs/{example_run['run_id']}")
    Select(browser.one("select#fork-step")).select_by_value("report")
    fork_input = browser.one("textarea#fork-input")
    fork_input.clear()
    fork_input.send_keys(json_text({**example_run["input"], "topic": "forked topic"}))
    browser.one("button#fork-run").click()
    fork_id = _new_run_page(browser, example_run["run_id"])
    browser.wait(lambda: drawn(browser)["status"] in FINISHED, "the fork to finish", 60)
    fork = stack.until(fork_id, FINISHED)
    assert (fork["status"], fork["forked_from_run_id"]) == ("completed", example_run["run_id"])
    assert fork["output"]["topic"] == "forked topic"
    assert fork["output"]["summary"] == example_run["output"]["summary"]  # research reused
    assert stack.engine.llm.state.requests == calls_before, "the fork called the model again"


def test_a_failed_step_is_retried_from_its_run_page(
        browser: Browser, stack: Stack, failed_run: dict[str, Any]) -> None:
    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/runs/{failed_run['run_id']}")
    step = failed_run["failed_step_id"]
    browser.one(f"form.action-retry[data-step-id='{step}'] button[type='submit']").click()
    retry_id = _new_run_page(browser, failed_run["run_id"])
    retried = stack.until(retry_id, FINISHED)
    assert retried["forked_from_run_id"] == failed_run["run_id"]
    assert retried["input"] == failed_run["input"]
    assert {s["step_id"]: s["attempts"] for s in retried["steps"]} == {step: 1}
    agree(browser, stack, retry_id, [step])
