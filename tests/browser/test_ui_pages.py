"""The web UI's other pages in real Chromium: workflows (search, the definition graph, triggers),
dead letters, components; a narrow screen without sideways scrolling; the keyboard alone."""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import NARROW, SLEEPY, WIDE, Browser, Stack, example_definition

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def operator(browser: Browser, stack: Stack) -> Browser:
    """The module's browser, signed in as an operator."""
    browser.sign_in(stack.keys["operator"])
    return browser


def _visible_rows(browser: Browser, css: str, attribute: str) -> set[str]:
    return {row[0] for row in browser.read(css, attribute, visible=True)}


def test_the_workflows_list_narrows_to_a_search(
        operator: Browser, stack: Stack, example_id: str) -> None:
    sleepy_id = stack.register(SLEEPY)
    operator.open("/ui/workflows")
    rows = "tr.workflow-row[data-workflow-id]"
    assert {example_id, sleepy_id} <= _visible_rows(operator, rows, "data-workflow-id")
    operator.screenshot("workflows")
    search = operator.one("input#workflow-search")
    search.send_keys("research")
    search.send_keys(Keys.ENTER)
    operator.wait(lambda: _visible_rows(operator, rows, "data-workflow-id") == {example_id},
                  "the list to show only the research workflow")
    operator.driver.find_element("css selector", f"{rows} a").click()
    operator.wait(lambda: operator.path() == f"/ui/workflows/{example_id}",
                  "the workflow's page")


def test_the_workflow_page_draws_the_definition_and_its_schedule(
        operator: Browser, stack: Stack, example_id: str, example_run: dict[str, Any],
        schedule: dict[str, Any]) -> None:
    operator.open(f"/ui/workflows/{example_id}")
    operator.one("main#page-workflow")
    assert operator.all(".version-row"), "no versions listed"
    graph = operator.one("svg#definition-graph")
    nodes = {n.get_attribute("data-step-id"): n.get_attribute("data-node-type")
             for n in graph.find_elements("css selector", "g.graph-node[data-step-id]")}
    assert nodes == {s["id"]: s["type"] for s in example_definition()["steps"]}
    edges = {(e.get_attribute("data-from"), e.get_attribute("data-to"))
             for e in graph.find_elements("css selector", "path.graph-edge")}
    api = stack.client.get(f"/api/executions/{example_run['run_id']}/graph").json()
    assert edges == {(e["source"], e["target"]) for e in api["edges"]}
    operator.screenshot("workflow")

    operator.open(f"/ui/workflows/{schedule['workflow_id']}")
    row = operator.one(f"tr.trigger-row[data-trigger-id='{schedule['trigger_id']}']")
    next_fire = row.find_element("css selector", ".next-fire")
    shown = next_fire.text + " ".join(
        t.get_attribute("datetime") or "" for t in next_fire.find_elements("css selector", "time"))
    assert schedule["state"]["next_due_at"][:10] in shown, (shown, schedule["state"])


def test_the_dead_letters_page_lists_a_record_no_one_could_decode(
        operator: Browser, dead_letter: str) -> None:
    operator.open("/ui/dead-letters")
    operator.one("main#page-dead-letters")
    row = operator.one(f"tr.dead-letter-row[data-event-id='{dead_letter}']")
    assert "UnknownSchema" in row.text, row.text
    operator.screenshot("dead-letters")
    assert operator.all(".action-redrive"), "an operator cannot re-drive"
    operator.open(f"/ui/dead-letters/{dead_letter}")
    assert "UnknownSchema" in operator.one("main").text


def test_the_components_page_lists_the_registry(operator: Browser, stack: Stack) -> None:
    deadline = time.monotonic() + 20
    while not (names := {c["name"] for c in
                         stack.client.get("/api/components", params={"limit": 500})
                         .json()["items"]}) >= {"web_search", "fetch_page"}:
        assert time.monotonic() < deadline, names
        time.sleep(0.3)
    operator.open("/ui/components")
    operator.one("main#page-components")
    assert _visible_rows(operator, "tr.component-row[data-component]", "data-component") == names
    row = operator.one("tr.component-row[data-component='web_search']")
    schemas = row.get_attribute("textContent")  # schemas may sit folded in a <details>
    assert '"query"' in schemas and '"results"' in schemas, "web_search's schemas are not shown"
    operator.screenshot("components")


def test_no_page_scrolls_sideways_on_a_narrow_screen(
        operator: Browser, example_id: str, example_run: dict[str, Any], dead_letter: str) -> None:
    pages = ["/ui/workflows", f"/ui/workflows/{example_id}", "/ui/runs",
             f"/ui/runs/{example_run['run_id']}", "/ui/dead-letters", "/ui/components"]
    operator.set_width(NARROW)
    try:
        wide: dict[str, tuple[int, int]] = {}
        for page in pages:
            operator.open(page)
            operator.one("main")
            scroll, client = operator.driver.execute_script(
                "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];")
            if scroll > client:
                wide[page] = (scroll, client)
            if page.startswith("/ui/runs/"):
                operator.screenshot("run-narrow")
        assert wide == {}, f"pages wider than the {NARROW[0]} px window (scroll, client): {wide}"
    finally:
        operator.set_width(WIDE)


def test_the_keyboard_reaches_the_skip_link_and_the_main_actions(
        operator: Browser, stack: Stack, example_id: str) -> None:
    operator.open(f"/ui/workflows/{example_id}")
    operator.driver.execute_script("document.activeElement && document.activeElement.blur()")
    first = operator.tab_to("#skip-to-main", limit=1)[-1]
    assert first["visible"], "the skip link shows no focus"
    assert operator.one("a#skip-to-main").is_displayed(), "the focused skip link is hidden"
    operator.press(Keys.ENTER)
    target = (first["href"] or "#").lstrip("#")
    operator.wait(lambda: operator.driver.execute_script(
        "const m = document.querySelector('main'), a = document.activeElement;"
        "return location.hash === '#' + arguments[0] || m.contains(a) || a === m;", target),
        "the skip link to move to the main content")
    stops = operator.tab_to("#start-run")
    assert any(s["id"] == "in-1" for s in stops), "Tab skips the run's input fields"
    assert all(s["visible"] for s in stops[-1:]), "the start button shows no focus"

    run_id = stack.asleep()
    operator.open(f"/ui/runs/{run_id}")
    stops = operator.tab_to("#cancel-run")
    assert stops[0]["id"] == "skip-to-main", stops[0]
    assert stops[-1]["visible"], "the cancel button shows no focus"
    operator.press(Keys.ENTER)  # the keyboard cancels too
    operator.accept_confirmation()
    operator.wait(lambda: operator.attr("#run-status", "data-status") == "cancelled",
                  "the run cancelled from the keyboard", 30)
