"""The run page's details in real Chromium, on a run with parallel branches, a retried step, a
loop and a delay: the step graph's `after` edges stand out over lighter (and hideable) data and
member edges, none crossing a node; timeline bars are reached and named by keyboard, and a long
timeline scrolls in its box, not the page; step panels follow a running run without closing what
the reader opened; the runs list tells a cancellation apart from a failure."""

from __future__ import annotations

import re
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import NARROW, WIDE, Browser, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FINISHED = {"completed", "failed", "cancelled"}
SHOWCASE: dict[str, Any] = {
    "name": "showcase",
    "description": "Parallel branches, a retried step, a loop and a delay.",
    "steps": [
        {"id": "plan", "type": "transform", "mapping": {"items": "input.items"}},
        {"id": "fan_out", "type": "parallel", "join": "all",
         "branches": [["flaky_call"], ["side_branch"]]},
        {"id": "flaky_call", "type": "tool", "component": "flaky@1",
         "inputs": {"fail_attempts": "${`1`}"},
         "retry": {"max_attempts": 3, "initial_interval": "500ms"}},
        {"id": "side_branch", "type": "transform", "expression": "steps.plan.output.items"},
        {"id": "each_item", "type": "loop", "for_each": "steps.plan.output.items",
         "body": ["double"]},
        {"id": "double", "type": "transform", "expression": "item"},
        {"id": "pause", "type": "delay", "duration": "1s", "after": ["fan_out"]},
        {"id": "report", "type": "transform",
         "mapping": {"items": "steps.each_item.output", "side": "steps.side_branch.output"},
         "after": ["pause"]},
    ],
}
LONG_ID = "step_with_a_quite_long_identifier"
MANY: dict[str, Any] = {
    "name": "many_steps",
    "steps": [
        {"id": "seed", "type": "transform", "expression": "input.items"},
        {"id": "each_of_the_many_items_with_a_long_name", "type": "loop",
         "for_each": "steps.seed.output", "body": [LONG_ID], "concurrency": 8},
        {"id": LONG_ID, "type": "transform", "expression": "item"},
        {"id": "nap", "type": "delay", "duration": "2s",
         "after": ["each_of_the_many_items_with_a_long_name"]},
    ],
}
LIVE: dict[str, Any] = {
    "name": "live_panels",
    "steps": [
        {"id": "big", "type": "transform", "mapping": {"text": "input.text"}},
        {"id": "nap", "type": "delay", "duration": "2s", "after": ["big"]},
        {"id": "woke", "type": "transform", "expression": "'woke up'", "after": ["nap"]},
        {"id": "long_nap", "type": "delay", "duration": "1h", "after": ["woke"]},
    ],
}


@pytest.fixture(scope="module")
def showcase(stack: Stack) -> dict[str, Any]:
    """A finished run of SHOWCASE: flaky_call failed once and was retried."""
    run_id = stack.start(stack.register(SHOWCASE), {"items": [1, 2, 3]})
    run = stack.until(run_id, FINISHED)
    assert run["status"] == "completed", run
    assert {s["step_id"]: s["attempts"] for s in run["steps"]}["flaky_call"] == 2, run
    return run


@pytest.fixture(scope="module")
def operator(browser: Browser, stack: Stack) -> Browser:
    """The module's browser, signed in as an operator, at the wide size."""
    browser.set_width(WIDE)
    browser.sign_in(stack.keys["operator"])
    return browser


_CROSSINGS = """
const svg = document.querySelector(arguments[0]);
const nodes = [...svg.querySelectorAll('g.graph-node')].map((g) => {
  const m = g.transform.baseVal.consolidate().matrix, r = g.querySelector('rect.node-box');
  return {id: g.dataset.stepId, x: m.e, y: m.f, w: +r.getAttribute('width'),
          h: +r.getAttribute('height')};
});
const hits = new Set();
for (const p of svg.querySelectorAll('path.graph-edge')) {
  for (let s = 0, len = p.getTotalLength(); s <= len; s += 2) {
    const pt = p.getPointAtLength(s);
    for (const n of nodes) {
      if (n.id !== p.dataset.from && n.id !== p.dataset.to && pt.x > n.x && pt.x < n.x + n.w
          && pt.y > n.y && pt.y < n.y + n.h) hits.add(`${p.dataset.from}->${p.dataset.to} over ${n.id}`);
    }
  }
}
return [...hits];
"""
_EDGES = """
return [...document.querySelectorAll('svg#run-graph path.graph-edge')].map((p) => {
  const style = getComputedStyle(p);
  return [p.dataset.from, p.dataset.to, p.dataset.role || null, parseFloat(style.strokeWidth),
          style.stroke, p.getClientRects().length > 0 && style.display !== 'none'];
});
"""


def _lightness(rgb: str) -> float:
    r, g, b = (int(n) for n in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_after_edges_stand_out_and_data_and_member_edges_are_lighter_and_can_be_hidden(
        operator: Browser, showcase: dict[str, Any]) -> None:
    operator.open(f"/ui/runs/{showcase['run_id']}")
    edges = {(a, b): rest for a, b, *rest in operator.driver.execute_script(_EDGES)}
    assert edges[("pause", "report")][0] == "after"  # written as `after`
    assert edges[("fan_out", "pause")][0] == "after"
    assert edges[("plan", "side_branch")][0] == "data"  # side_branch reads plan's output
    assert edges[("fan_out", "flaky_call")][0] == "member"  # a branch of the parallel
    after, data, member = (edges[k] for k in (("pause", "report"), ("plan", "side_branch"),
                                              ("fan_out", "flaky_call")))
    for light in (data, member):
        assert after[1] > light[1], f"after edge {after[1]}px, not bolder than {light[1]}px"
        assert _lightness(after[2]) < _lightness(light[2]) - 0.15, (after[2], light[2])
    assert operator.driver.execute_script(_CROSSINGS, "svg#run-graph") == []
    operator.screenshot("run-graph-edges")

    operator.one("#run-graph-all-edges").click()  # hide data and member edges
    shown = {(a, b): rest[3] for a, b, *rest in operator.driver.execute_script(_EDGES)}
    assert {k for k, on in shown.items() if on} == {k for k, v in edges.items() if v[0] == "after"}
    operator.one("#run-graph-all-edges").click()
    shown = {(a, b): rest[3] for a, b, *rest in operator.driver.execute_script(_EDGES)}
    assert all(shown.values())


def test_the_example_definitions_graph_has_no_edge_over_a_node(
        operator: Browser, example_id: str) -> None:
    operator.open(f"/ui/workflows/{example_id}")
    assert operator.driver.execute_script(_CROSSINGS, "svg#definition-graph") == []
    roles = {r[0] for r in operator.read("svg#definition-graph path.graph-edge", "data-role")}
    assert roles == {"after", "data", "member"}, roles


_DURATION = re.compile(r"\d+(\.\d)? (ms|s|min|h)\b")


def test_timeline_bars_are_reached_by_tab_and_named_with_step_attempt_status_and_duration(
        operator: Browser, showcase: dict[str, Any]) -> None:
    operator.open(f"/ui/runs/{showcase['run_id']}")
    driver = operator.driver
    driver.execute_script("document.activeElement && document.activeElement.blur();"
                          "window.scrollTo(0, 0);")
    names: dict[tuple[str, str], str] = {}
    body = driver.find_element("css selector", "body")
    body.send_keys(Keys.TAB)
    for _ in range(200):  # bounded: the page has far fewer stops before and in the timeline
        active = driver.switch_to.active_element
        bar = driver.execute_script(
            "const b = arguments[0].closest('#run-timeline') && arguments[0].querySelector("
            "'.timeline-bar'); return b ? [b.dataset.stepId, b.dataset.attempt] : null;", active)
        if bar:
            names[tuple(bar)] = active.accessible_name
        elif names:
            break  # tabbed past the timeline
        active.send_keys(Keys.TAB)
    steps = {s["step_id"]: s for s in showcase["steps"]}
    assert {k for k in names} == {(sid, str(n)) for sid, s in steps.items()
                                  for n in range(1, s["attempts"] + 1)}, names
    for (step_id, attempt), name in names.items():
        assert name.startswith(f"{step_id}, attempt {attempt}: "), name
        assert _DURATION.search(name), f"no duration in {name!r}"
    assert "failed" in names[("flaky_call", "1")] and "succeeded" in names[("flaky_call", "2")]

    attempts = "section.step-detail[data-step-id='flaky_call'] details[data-key='attempts']"
    operator.one(f"{attempts} > summary").click()
    rows = operator.read(f"{attempts} tr.attempt-row", "data-attempt", "data-status", "text",
                         visible=True)
    assert [(a, st) for a, st, _ in rows] == [("1", "failed"), ("2", "succeeded")], rows
    assert "planned failures" in (rows[0][2] or ""), rows
    driver.execute_script("arguments[0].scrollIntoView();", operator.one(attempts))
    operator.screenshot("step-attempts")

    bar = driver.find_element("css selector",
                              "#run-timeline .timeline-bar[data-step-id='pause']")
    link = driver.execute_script("return arguments[0].closest('a');", bar)
    driver.execute_script("arguments[0].focus();", link)
    operator.screenshot("timeline-focus")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    operator.wait(lambda: driver.current_url.endswith("#step-pause"), "Enter to open the step")


_WIDTHS = """
const box = document.getElementById('timeline-box');
return {page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
        box: [box.scrollWidth, box.clientWidth],
        card: [box.parentElement.scrollWidth, box.parentElement.clientWidth]};
"""


def _texts(browser: Browser, css: str) -> list[str]:
    """The text of each element matching `css` (SVG text has no innerText)."""
    return browser.driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent);", css)


def test_a_long_timeline_scrolls_in_its_box_and_never_widens_the_page(
        operator: Browser, stack: Stack) -> None:
    run_id = stack.start(stack.register(MANY), {"items": list(range(40))})
    assert stack.until(run_id, FINISHED)["status"] == "completed"
    try:
        operator.set_width(NARROW)
        operator.open(f"/ui/runs/{run_id}")
        widths = operator.driver.execute_script(_WIDTHS)
        assert widths["page"][0] <= widths["page"][1], f"the page scrolls sideways: {widths}"
        assert widths["card"][0] <= widths["card"][1], widths
        assert widths["box"][0] > widths["box"][1], f"the timeline does not scroll: {widths}"
        tick = operator.driver.execute_script(
            "return document.querySelector('#run-timeline .tick-label')"
            ".getBoundingClientRect().height;")
        assert tick >= 11, f"the axis's labels are drawn {tick:.1f} px high: unreadable"
        operator.screenshot("timeline-narrow", max_height=2400)
    finally:
        operator.set_width(WIDE)
    labels = _texts(operator, "#run-timeline .bar-label")
    iterations = [label for label in labels if label.endswith("]")]
    assert len(iterations) == len(set(iterations)) == 40, labels
    heads = _texts(operator, "#run-timeline .tick-label:not(.tick-foot)")
    feet = _texts(operator, "#run-timeline .tick-label.tick-foot")
    assert heads == feet and len(heads) >= 3, (heads, feet)


def test_step_panels_follow_a_running_run_and_keep_what_the_reader_opened(
        operator: Browser, stack: Stack) -> None:
    text = "lorem ipsum " * 100
    run_id = stack.start(stack.register(LIVE), {"text": text})
    stack.until(run_id, {"running"}, step=("big", "succeeded"))
    try:
        operator.open(f"/ui/runs/{run_id}")
        output = "section.step-detail[data-step-id='big'] details[data-key='output']"
        operator.one(f"{output} > summary").click()
        operator.wait(lambda: operator.attr(output, "open") is not None, "the value to open")
        summary = operator.text(f"{output} > summary") or ""
        assert "hide" in summary and "lorem" not in summary, f"opened, it still says {summary!r}"
        operator.mark()
        operator.driver.execute_script(  # a keyboard user on the timeline, as frames come
            "document.querySelector(\"#run-timeline .timeline-bar[data-step-id='big']\")"
            ".closest('a').focus();")
        woke = "section.step-detail[data-step-id='woke']"
        operator.wait(lambda: operator.attr(woke, "data-status") == "succeeded",
                      "the woke step's panel to appear while the run runs", 30)
        assert "woke up" in (operator.text(woke) or "")
        operator.screenshot("run-live", max_height=1800)
        operator.wait(lambda: operator.attr("section.step-detail[data-step-id='nap']",
                                            "data-status") == "succeeded", "nap's panel")
        assert operator.attr("#run-status", "data-status") == "running"
        assert operator.marked(), "the page reloaded"
        assert operator.attr(output, "open") is not None, "the opened value was closed"
        focused = operator.driver.execute_script(
            "const on = document.activeElement;"
            "const bar = on.matches('#run-timeline a.bar-link') && on.querySelector('.timeline-bar');"
            "return bar ? bar.dataset.stepId : on.tagName;")
        assert focused == "big", f"the redrawn timeline lost the focus (now on {focused})"
        assert text.strip()[:40] in (operator.text(f"{output} pre.json") or "")
        panels = "#step-panels > section.step-detail"
        operator.one(f"{panels}[data-step-id='long_nap']")
        order = [r[0] for r in operator.read(panels, "data-step-id")]
        operator.open(f"/ui/runs/{run_id}")  # the same panels, in the order a new page has
        assert order == [r[0] for r in operator.read(panels, "data-step-id")]
    finally:
        stack.client.post(f"/api/executions/{run_id}/cancel", json={"reason": "test over"})


def test_the_runs_list_tells_a_cancellation_apart_from_a_failure(
        operator: Browser, stack: Stack, failed_run: dict[str, Any]) -> None:
    run_id = stack.asleep()
    operator.open("/ui/runs")
    operator.mark()
    r = stack.client.post(f"/api/executions/{run_id}/cancel",
                          json={"reason": "no longer needed"})
    assert r.status_code == 202, r.text
    note = f"tr.run-row[data-run-id='{run_id}'] .run-note"
    operator.wait(lambda: "no longer needed" in (operator.text(note) or ""),
                  "the list to show the cancel reason live")
    assert operator.marked(), "the list reloaded"
    assert operator.attr(note, "class") == "run-note note-cancelled small"
    operator.open("/ui/runs")
    style = """
    const e = document.querySelector(arguments[0]);
    if (!e) return null;
    const s = getComputedStyle(e);
    return [e.innerText, s.color, s.backgroundColor];
    """
    cancelled = operator.driver.execute_script(
        style, f"tr.run-row[data-run-id='{run_id}'] .run-note")
    failed = operator.driver.execute_script(
        style, f"tr.run-row[data-run-id='{failed_run['run_id']}'] .run-note")
    fail_colour = operator.driver.execute_script(
        "return getComputedStyle(document.querySelector("
        "'tr.run-row[data-status=failed] .status-badge')).color;")
    assert cancelled and "no longer needed" in cancelled[0], cancelled
    assert failed and cancelled[1] != failed[1], (cancelled, failed)
    assert cancelled[1] != fail_colour, f"a cancellation in the failure colour {fail_colour}"
    assert operator.all(f"tr.run-row[data-run-id='{run_id}'] .text-error") == []

    operator.open(f"/ui/runs/{run_id}")
    assert "no longer needed" in (operator.text("#run-cancelled") or "")
    assert operator.absent(".run-head .alert-error"), "the run page shows a cancel as an error"
